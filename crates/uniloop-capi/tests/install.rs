//! `scripts/install-c.sh PREFIX` into a temporary prefix, then the way a C
//! programmer uses the result: `examples/echo.c` built with pkg-config
//! (shared and static) and with a small CMake project (`find_package`),
//! each run from the installed files only (no `LD_LIBRARY_PATH`; the
//! shared builds find the library by the rpath pkg-config's libdir or
//! CMake gives them), plus a check that the header's version macros match
//! `uniloop_version()`.
//!
//! The install builds the `dev` profile (the other tests' build) unless
//! `UNILOOP_INSTALL_PROFILE` names another (`release-c`, the installed
//! profile, in scripts/test.sh).

#![cfg(all(unix, not(target_os = "macos")))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn words(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The `NEEDED` entries and `SONAME` of an ELF file, from readelf.
fn dynamic(file: &Path) -> String {
    String::from_utf8_lossy(&run(Command::new("readelf").arg("-d").arg(file)).stdout).into_owned()
}

/// Runs an installed program with no library path from the environment.
fn run_installed(exe: &Path) {
    run(Command::new(exe)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(std::process::Stdio::null()));
}

const VERSION_C: &str = r#"#include <uniloop.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    char want[32];
    unsigned v = uniloop_version();
    snprintf(want, sizeof want, "%d.%d.%d", UNILOOP_VERSION_MAJOR,
             UNILOOP_VERSION_MINOR, UNILOOP_VERSION_PATCH);
    if (v != ((UNILOOP_VERSION_MAJOR << 16) | (UNILOOP_VERSION_MINOR << 8) | UNILOOP_VERSION_PATCH)
        || strcmp(uniloop_version_string(), want) != 0) {
        fprintf(stderr, "header %s, library %s (%x)\n", want, uniloop_version_string(), v);
        return 1;
    }
    printf("uniloop %s\n", uniloop_version_string());
    return 0;
}
"#;

#[test]
fn install_and_use() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap().parent().unwrap();
    let tools = ["cc", "pkg-config", "cmake", "readelf"];
    if let Some(missing) = tools.iter().find(|t| !have(t)) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{missing} is required in CI (scripts/test.sh installs it)"
        );
        eprintln!("install test skipped: {missing} not installed");
        return;
    }
    let profile = std::env::var("UNILOOP_INSTALL_PROFILE").unwrap_or_else(|_| "dev".into());
    let work = std::env::temp_dir().join(format!("uniloop-install-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let prefix = work.join("prefix");
    run(Command::new("bash")
        .arg(root.join("scripts/install-c.sh"))
        .args(["--profile", &profile])
        .arg(&prefix));

    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    for f in [
        "include/uniloop.h".to_string(),
        "include/async/async_runtime.h".into(),
        "include/async/console_worker.h".into(),
        "lib/libuniloop.a".into(),
        format!("lib/libuniloop.so.{version}"),
        "lib/pkgconfig/uniloop.pc".into(),
        "lib/cmake/uniloop/uniloopConfig.cmake".into(),
        "lib/cmake/uniloop/uniloopConfigVersion.cmake".into(),
    ] {
        assert!(prefix.join(&f).is_file(), "{f} not installed");
    }
    let so_major = format!("libuniloop.so.{major}");
    assert_eq!(
        std::fs::read_link(lib.join("libuniloop.so")).unwrap(),
        PathBuf::from(&so_major)
    );
    assert_eq!(
        std::fs::read_link(lib.join(&so_major)).unwrap(),
        PathBuf::from(format!("libuniloop.so.{version}"))
    );
    let d = dynamic(&lib.join(format!("libuniloop.so.{version}")));
    assert!(
        d.contains(&format!("Library soname: [{so_major}]")),
        "no SONAME {so_major}:\n{d}"
    );

    let pkg = |args: &[&str]| {
        words(&run(Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
            .args(args)))
    };
    assert_eq!(pkg(&["--modversion", "uniloop"]), [version]);
    let private = pkg(&["--static", "--libs", "uniloop"]);
    assert!(private.iter().any(|w| w == "-lpthread"), "{private:?}");

    let echo = manifest.join("examples/echo.c");
    let version_c = work.join("version.c");
    std::fs::write(&version_c, VERSION_C).unwrap();
    let libdir = pkg(&["--variable=libdir", "uniloop"]).join(" ");
    for (module, rpath) in [("uniloop", true), ("uniloop-static", false)] {
        for (name, src) in [("echo", &echo), ("version", &version_c)] {
            let exe = work.join(format!("{name}-pkgconfig-{module}"));
            let mut cc = Command::new("cc");
            cc.args(["-std=c11", "-Wall", "-Werror", "-D_GNU_SOURCE"])
                .arg(src)
                .args(pkg(&["--cflags", "--libs", module]))
                .arg("-o")
                .arg(&exe);
            if rpath {
                cc.arg(format!("-Wl,-rpath,{libdir}"));
            }
            run(&mut cc);
            let d = dynamic(&exe);
            assert_eq!(
                d.contains(&format!("Shared library: [{so_major}]")),
                rpath,
                "{module}: NEEDED entries:\n{d}"
            );
            run_installed(&exe);
        }
    }

    // The three lines a CMake project needs (after project()).
    let proj = work.join("cmake-app");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::copy(&echo, proj.join("echo.c")).unwrap();
    std::fs::write(
        proj.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.10)\nproject(app C)\n\
         find_package(uniloop 0.1 REQUIRED)\n\
         add_executable(echo echo.c)\n\
         target_link_libraries(echo PRIVATE uniloop::uniloop)\n",
    )
    .unwrap();
    for (static_, build) in [(false, "build-shared"), (true, "build-static")] {
        let b = work.join(build);
        run(Command::new("cmake")
            .arg("-S")
            .arg(&proj)
            .arg("-B")
            .arg(&b)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!(
                "-Duniloop_USE_STATIC_LIBS={}",
                if static_ { "ON" } else { "OFF" }
            )));
        run(Command::new("cmake").arg("--build").arg(&b));
        let exe = b.join("echo");
        let d = dynamic(&exe);
        assert_eq!(
            d.contains(&format!("Shared library: [{so_major}]")),
            !static_,
            "{build}: NEEDED entries:\n{d}"
        );
        run_installed(&exe);
    }
    let _ = std::fs::remove_dir_all(&work);
}
