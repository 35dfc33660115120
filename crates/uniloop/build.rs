//! Names the OS families the backends are chosen by, so `src/sys` can say
//! `cfg(uniloop_kqueue)` instead of repeating a list of nine `target_os`es.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(uniloop_kqueue)");
    println!("cargo:rustc-check-cfg=cfg(uniloop_evfilt_user)");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let apple = matches!(
        os.as_str(),
        "macos" | "ios" | "tvos" | "watchos" | "visionos"
    );
    let kqueue = apple || matches!(os.as_str(), "freebsd" | "openbsd" | "netbsd" | "dragonfly");
    if kqueue {
        println!("cargo:rustc-cfg=uniloop_kqueue");
    }
    // EVFILT_USER: the doorbell can live on the kqueue itself.
    if apple || matches!(os.as_str(), "freebsd" | "dragonfly") {
        println!("cargo:rustc-cfg=uniloop_evfilt_user");
    }
}
