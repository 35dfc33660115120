#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs, every test, the loom models.
# This is the README's test command and what .ci/run calls. It installs
# whatever it needs, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# Keep a copy of everything for the closing tally of cargo's result lines.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
exec > >(tee "$LOG") 2>&1

step "rustfmt"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check

step "platform cfgs stay inside sys/"
if grep -rnE 'cfg\((any\()?(target_os|unix|windows|target_family)' crates/uniloop/src \
    | grep -v '/src/sys/'; then
  echo "platform cfg outside crates/uniloop/src/sys (see shared/DESIGN.md)"; exit 1
fi

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "docs"
# The C library's crate has the library name `uniloop` too (libuniloop.a),
# so rustdoc would write both to target/doc/uniloop: document it on its own.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --exclude uniloop-capi
RUSTDOCFLAGS="-D warnings" cargo doc -p uniloop-capi --no-deps

step "tests (native)"
# The C library's tests run under valgrind (tests/c.rs insists on it in CI);
# its install test (tests/install.rs) builds with pkg-config and CMake.
need=()
for tool in valgrind:valgrind pkg-config:pkg-config cmake:cmake readelf:binutils; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
cargo test --workspace
# The C library as installed: scripts/install-c.sh with the release-c
# profile, used through pkg-config and find_package(uniloop).
UNILOOP_INSTALL_PROFILE=release-c cargo test -p uniloop-capi --test install
# The io_uring backend runs the contract, posted-I/O and stale-entry suites
# above unchanged, and its own (tests/uring.rs). Those tests build their
# runtime with unwrap(), so where io_uring is refused they fail rather
# than skip; this line says they ran.
uring_suites=$(grep -acE '^test .*uring::[a-z0-9_:]+ \.\.\. ok$' "$LOG")
echo "io_uring: $uring_suites tests passed on Backend::Uring (contract, posted_io, stale, runtime unit tests; plus tests/uring.rs)"
[ "$uring_suites" -gt 0 ] || { echo "io_uring: no test ran on Backend::Uring"; exit 1; }

step "tests (Windows, under Wine)"
# The IOCP backend: builds for x86_64-pc-windows-gnu and runs the same
# contract suite plus tests/windows.rs under Wine (installs what it needs).
bash scripts/test-windows.sh

step "kqueue backend: type-check and lint (macOS, FreeBSD, NetBSD)"
# These targets cannot run here; clippy over --all-targets also type-checks
# the contract suite's kqueue module. NetBSD has no EVFILT_USER, so it
# covers the fd-doorbell variant.
for target in x86_64-apple-darwin x86_64-unknown-freebsd x86_64-unknown-netbsd; do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  cargo clippy -p uniloop --target "$target" --all-targets -- -D warnings
done

step "Neolith on libuniloop (shared/neolith/run.sh)"
# Builds the Neolith driver with its lib/async replaced by libuniloop.a and
# runs its whole suite against a baseline on its own lib/async (cached in
# ~/.cache/uniloop-neolith, so re-runs are quick). Its last line is the
# result; it exits non-zero if anything that passes on the baseline fails.
# The harness sits beside the checkout (../shared); a clone made elsewhere
# finds it at the workplace's path, or where UNILOOP_NEOLITH_RUN says.
NEOLITH_RUN=${UNILOOP_NEOLITH_RUN:-}
for candidate in "$PWD/../shared/neolith/run.sh" /work/shared/neolith/run.sh; do
  [ -n "$NEOLITH_RUN" ] || { [ -f "$candidate" ] && NEOLITH_RUN=$candidate; }
done
if [ -n "$NEOLITH_RUN" ] && [ -f "$NEOLITH_RUN" ]; then
  NEOLITH_LOG=$(mktemp)
  neolith_rc=0
  bash "$NEOLITH_RUN" "$PWD" >"$NEOLITH_LOG" 2>&1 || neolith_rc=$?
  tail -30 "$NEOLITH_LOG"
  echo "neolith: $(tail -1 "$NEOLITH_LOG")"
  rm -f "$NEOLITH_LOG"
  [ "$neolith_rc" = 0 ] || { echo "neolith acceptance run failed (rc $neolith_rc)"; exit 1; }
else
  echo "neolith: SKIPPED, shared/neolith/run.sh not found (set UNILOOP_NEOLITH_RUN)"
fi

step "loom models"
# A separate target dir: the cfg changes every crate's fingerprint.
LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg uniloop_loom" \
  cargo test -p uniloop --lib --release --target-dir target/loom -- loom

step "reliability: Miri, ThreadSanitizer, AddressSanitizer, registration state machine, soak"
# Installs nightly, miri and rust-src itself; one summary line per tool.
# Its cargo result lines are indented so the closing tally below counts
# each native test once, not again under Miri and the sanitizers.
bash scripts/test-reliability.sh 2>&1 | sed -u 's/^test result: /  [reliability] test result: /'

step "benchmark smoke run (CI: checks every case runs; no pass/fail on the numbers)"
# --quick finishes in under 2 minutes on 2 cores; the binary exits non-zero
# only if a case fails to run.
cargo run --release -p uniloop-bench -- --quick
# Instructions per operation under callgrind (about 30 s): deterministic,
# so its table is comparable from one machine to the next.
cargo run --release -p uniloop-bench -- --callgrind

echo
echo "all checks passed"
# One closing line for the whole run, summed from cargo's `test result:` lines.
passed=$(grep -aE '^test result: ok\.' "$LOG" | grep -aoE 'test result: ok\. [0-9]+ passed' | awk '{s += $4} END {print s + 0}')
ignored=$(grep -aE '^test result: ok\.' "$LOG" | grep -aoE 'test result: ok\. [0-9]+ passed; 0 failed; [0-9]+ ignored' | awk '{s += $8} END {print s + 0}')
echo "tests: $passed passed, 0 failed, $ignored skipped"
