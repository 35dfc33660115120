//! The library's version: `UNILOOP_VERSION_*` for the preprocessor (the
//! header's version), `uniloop_version()` for the library actually loaded.

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths.
#![allow(unreachable_pub)]

use std::ffi::{c_char, c_uint};

/// The major version of the header (the `N` of `libuniloop.so.N`).
pub const UNILOOP_VERSION_MAJOR: u32 = 0;
/// The minor version of the header.
pub const UNILOOP_VERSION_MINOR: u32 = 1;
/// The patch version of the header.
pub const UNILOOP_VERSION_PATCH: u32 = 0;

/// A decimal number from Cargo's version string, at compile time.
const fn parse(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version part is not a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's numbers are written out (cbindgen prints literals only):
// these fail the build when Cargo.toml's version moves without them.
const _: () = {
    assert!(UNILOOP_VERSION_MAJOR == parse(env!("CARGO_PKG_VERSION_MAJOR")));
    assert!(UNILOOP_VERSION_MINOR == parse(env!("CARGO_PKG_VERSION_MINOR")));
    assert!(UNILOOP_VERSION_PATCH == parse(env!("CARGO_PKG_VERSION_PATCH")));
};

/// The version of the loaded library as
/// `(MAJOR << 16) | (MINOR << 8) | PATCH`, to compare with the header's
/// `UNILOOP_VERSION_*` (a program built against one header may run with
/// a newer `libuniloop.so.MAJOR`).
#[no_mangle]
pub extern "C" fn uniloop_version() -> c_uint {
    (UNILOOP_VERSION_MAJOR << 16) | (UNILOOP_VERSION_MINOR << 8) | UNILOOP_VERSION_PATCH
}

/// The version of the loaded library as a string, `"MAJOR.MINOR.PATCH"`
/// (static; never NULL).
#[no_mangle]
pub extern "C" fn uniloop_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
