//! Gives the shared library its SONAME (`libuniloop.so.MAJOR`) on ELF
//! platforms, so programs linked against `libuniloop.so` load
//! `libuniloop.so.MAJOR` at run time and a minor release can replace it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let elf = family == "unix" && !matches!(os.as_str(), "macos" | "ios");
    if elf {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libuniloop.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
