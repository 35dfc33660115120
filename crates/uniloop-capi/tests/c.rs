//! Builds every C test program in `tests/c/` and the examples in
//! `examples/` against `libuniloop.a`, runs each, and (when valgrind is
//! installed, always in CI) runs each again under
//! `valgrind --error-exitcode=1 --leak-check=full`.
//!
//! A C test exits 0 on success; its output is shown on failure. Each file
//! is its own `#[test]`-like case, reported together here so one `cargo
//! test` line covers them; the per-file results are printed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/c-HASH
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `cargo build -p uniloop-capi` for this profile: cargo test builds the
/// crate as an rlib-less staticlib only when asked, so ask.
fn build_library() -> PathBuf {
    let out = target_dir();
    let profile = out.file_name().unwrap().to_str().unwrap().to_string();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "uniloop-capi"]);
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p uniloop-capi failed");
    let lib = out.join("libuniloop.a");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn c_sources(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "c"));
    v.sort();
    v
}

#[test]
fn c_programs() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = build_library();
    let bin_dir = target_dir().join("c-tests");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let valgrind = have("valgrind");
    if !valgrind && std::env::var_os("CI").is_some() {
        panic!("valgrind is required in CI (apt-get install valgrind)");
    }
    let mut sources = c_sources(&manifest.join("tests/c"));
    sources.extend(c_sources(&manifest.join("examples")));
    let mut failures = Vec::new();
    for src in &sources {
        let name = src.file_stem().unwrap().to_str().unwrap();
        let exe = bin_dir.join(name);
        let cc = Command::new("cc")
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-g",
                "-D_GNU_SOURCE",
            ])
            .arg("-I")
            .arg(manifest.join("include"))
            .arg(src)
            .arg(&lib)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe)
            .output()
            .expect("run cc");
        if !cc.status.success() {
            failures.push(format!(
                "{name}: compile failed\n{}",
                String::from_utf8_lossy(&cc.stderr)
            ));
            continue;
        }
        let mut runs = vec![("native", Command::new(&exe))];
        if valgrind {
            let mut v = Command::new("valgrind");
            v.args([
                "-q",
                "--error-exitcode=1",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
            ])
            .arg(&exe);
            runs.push(("valgrind", v));
        }
        for (how, mut cmd) in runs {
            cmd.env("UNILOOP_C_TEST_UNDER", how)
                .stdin(std::process::Stdio::null());
            let out = cmd.output().expect("run C test");
            if out.status.success() {
                println!("C test {name} ({how}): ok");
            } else {
                failures.push(format!(
                    "{name} ({how}): {}\n--- stdout\n{}\n--- stderr\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    // The header in strict C99 (what it requires) and C++.
    for (compiler, std) in [("cc", "-std=c99"), ("c++", "-std=c++11")] {
        let lang = if compiler == "cc" { "c" } else { "c++" };
        let out = Command::new(compiler)
            .args([
                std,
                "-pedantic",
                "-Wall",
                "-Werror",
                "-fsyntax-only",
                "-x",
                lang,
            ])
            .arg("-I")
            .arg(manifest.join("include"))
            .arg(manifest.join("tests/c/smoke.c"))
            .output()
            .expect("run the compiler");
        if out.status.success() {
            println!("uniloop.h under {compiler} {std} -pedantic: ok");
        } else {
            failures.push(format!(
                "uniloop.h under {compiler} {std}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} C test run(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
