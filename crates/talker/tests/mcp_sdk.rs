//! `talker --mcp` against a real MCP client: the official Python SDK's
//! stdio client (`tests/mcp_sdk.py`), installed with pip into a venv under
//! the target directory. Skipped, saying so, where there is no python3 —
//! except in CI (`CI` set), where it must run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn must_run() -> bool {
    std::env::var_os("CI").is_some()
}

fn skip(why: &str) {
    assert!(!must_run(), "the MCP SDK test must run in CI: {why}");
    eprintln!("mcp_sdk: SKIPPED: {why}");
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

#[test]
fn the_python_mcp_sdk_client_drives_the_talker() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join("mcp-sdk-venv");
    let python = venv_python(&venv);
    if !python.exists() {
        match Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => return skip(&format!("python3 -m venv failed: {s}")),
            Err(e) => return skip(&format!("no python3: {e}")),
        }
    }
    let has_sdk = Command::new(&python)
        .args(["-c", "import mcp"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        let pip = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "mcp",
            ])
            .status();
        if !pip.is_ok_and(|s| s.success()) {
            return skip("pip install mcp failed");
        }
    }
    let data = tmp.join(format!("talker-mcp-sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("mcp_sdk.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_talker"))
        .arg(&data)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    // Printed so a run shows that the real client was used.
    println!(
        "mcp_sdk: ran the Python MCP SDK client: {}",
        stdout.trim().replace('\n', "; ")
    );
    eprintln!("mcp_sdk: ran the Python MCP SDK client");
}
