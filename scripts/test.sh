#!/usr/bin/env bash
# The test suite, in named steps. This is the README's test command and what
# .ci/run calls (with no argument: every step). It installs whatever it
# needs, so it works on a fresh machine.
#
#   bash scripts/test.sh [STEP...]      (default: all)
#
#   lint         rustfmt, platform cfgs inside sys/, clippy (native, and
#                for macOS/FreeBSD/NetBSD: the kqueue backend), rustdoc
#   native       cargo test --workspace (the C tests under valgrind, the
#                io_uring suites)
#   quick        the same as native: what a contributor runs first
#   readme       every block of README.md and crates/talker/README.md, run
#                as a user would, and the docs' links (scripts/readme_test.py)
#   wine         the Windows build and tests under Wine
#   neolith      the Neolith driver's suite on libuniloop.a
#   loom         the loom models
#   reliability  Miri, sanitizers, the registration state machine, fuzz, soak
#   bench        the benchmark smoke run and the callgrind probes
#   all          all of the above but quick, in this order
#
# Every step ends with the closing tally of cargo's result lines.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(lint native readme wine neolith loom reliability bench)
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(all)

step() { printf '\n=== %s\n' "$*"; }

# Installs Debian packages that are missing (as root, or through sudo).
need_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

step_lint() {
  step "rustfmt"
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  cargo fmt --all --check

  step "platform cfgs stay inside sys/"
  if grep -rnE 'cfg\((any\()?(target_os|unix|windows|target_family)' crates/uniloop/src \
      | grep -v '/src/sys/'; then
    echo "platform cfg outside crates/uniloop/src/sys (see docs/ARCHITECTURE.md)"; exit 1
  fi

  step "module circles (scripts/check_modules.py)"
  # No two modules use each other, directly or round a circle; the
  # vocabulary modules use nothing else of the crate; sys/ uses only them
  # and its own items; no backend uses another.
  python3 scripts/check_modules.py crates/uniloop/src \
    --leaf token --leaf interest --leaf trigger --leaf readiness --leaf backend --leaf sync \
    --leaf console_kind --leaf signal_name \
    --sys sys --backend sys/unix/epoll --backend sys/unix/poll --backend sys/unix/kqueue \
    --backend sys/unix/uring --backend sys/windows/iocp
  python3 scripts/check_modules.py crates/uniloop-bench/src
  python3 scripts/check_modules.py crates/talker/src
  python3 scripts/check_modules.py crates/uniloop-capi/src

  step "clippy"
  cargo clippy --workspace --all-targets -- -D warnings

  step "kqueue backend: type-check and lint (macOS, FreeBSD, NetBSD)"
  # These targets cannot run here; clippy over --all-targets also
  # type-checks the contract suite's kqueue module. NetBSD has no
  # EVFILT_USER, so it covers the fd-doorbell variant.
  for target in x86_64-apple-darwin x86_64-unknown-freebsd x86_64-unknown-netbsd; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    cargo clippy -p uniloop --target "$target" --all-targets -- -D warnings
  done

  step "docs"
  # The C library's crate has the library name `uniloop` too (libuniloop.a),
  # so rustdoc would write both to target/doc/uniloop: document it on its own.
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --exclude uniloop-capi
  RUSTDOCFLAGS="-D warnings" cargo doc -p uniloop-capi --no-deps

  step "links and wording in README.md, the talker's README, CHANGELOG.md, docs/"
  python3 scripts/readme_test.py --checks
}

step_native() {
  step "tests (native)"
  # The C library's tests run under valgrind (tests/c.rs insists on it in CI);
  # its install test (tests/install.rs) builds with pkg-config and CMake.
  need_packages valgrind pkg-config cmake binutils
  # The C chat server on libuv (uniloop-bench's tests/chat.rs and its chat case).
  need_packages libuv1-dev pkg-config
  # The talker's telnet test drives inetutils telnet in a pseudo-terminal
  # (crates/talker/tests/telnet.rs insists on it in CI; pexpect comes by pip).
  need_packages inetutils-telnet
  cargo test --workspace
  # The C library as installed: scripts/install-c.sh with the release-c
  # profile, used through pkg-config and find_package(uniloop).
  UNILOOP_INSTALL_PROFILE=release-c cargo test -p uniloop-capi --test install
  # The io_uring backend runs the contract, posted-I/O and stale-entry
  # suites above unchanged, and its own (tests/uring.rs). Those tests build
  # their runtime with unwrap(), so where io_uring is refused they fail
  # rather than skip; this line says they ran.
  local uring_suites
  uring_suites=$(grep -acE '^test .*uring::[a-z0-9_:]+ \.\.\. ok$' "$LOG")
  echo "io_uring: $uring_suites tests passed on Backend::Uring (contract, posted_io, stale, runtime unit tests; plus tests/uring.rs)"
  [ "$uring_suites" -gt 0 ] || { echo "io_uring: no test ran on Backend::Uring"; exit 1; }
}

step_readme() {
  step "README commands (scripts/readme_test.py)"
  # A real telnet client for the talker block, and the C compiler line.
  need_packages inetutils-telnet
  python3 scripts/readme_test.py
}

step_wine() {
  step "tests (Windows, under Wine)"
  # The IOCP backend: builds for x86_64-pc-windows-gnu and runs the same
  # contract suite plus tests/windows.rs under Wine (installs what it needs).
  bash scripts/test-windows.sh
}

step_neolith() {
  step "Neolith on libuniloop (shared/neolith/run.sh)"
  # Builds the Neolith driver with its lib/async replaced by libuniloop.a
  # and runs its whole suite against a baseline on its own lib/async
  # (cached in ~/.cache/uniloop-neolith, so re-runs are quick). Its last
  # line is the result; it exits non-zero if anything that passes on the
  # baseline fails. The harness sits beside the checkout (../shared); a
  # clone made elsewhere finds it at the workplace's path, or where
  # UNILOOP_NEOLITH_RUN says.
  local run=${UNILOOP_NEOLITH_RUN:-} candidate
  for candidate in "$PWD/../shared/neolith/run.sh" /work/shared/neolith/run.sh; do
    [ -n "$run" ] || { [ -f "$candidate" ] && run=$candidate; }
  done
  if [ -n "$run" ] && [ -f "$run" ]; then
    local log rc=0
    log=$(mktemp)
    bash "$run" "$PWD" >"$log" 2>&1 || rc=$?
    tail -30 "$log"
    echo "neolith: $(tail -1 "$log")"
    rm -f "$log"
    [ "$rc" = 0 ] || { echo "neolith acceptance run failed (rc $rc)"; exit 1; }
  else
    echo "neolith: SKIPPED, shared/neolith/run.sh not found (set UNILOOP_NEOLITH_RUN)"
  fi
}

step_loom() {
  step "loom models"
  # A separate target dir: the cfg changes every crate's fingerprint.
  LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg uniloop_loom" \
    cargo test -p uniloop --lib --release --target-dir target/loom -- loom
}

step_reliability() {
  step "reliability: Miri, ThreadSanitizer, AddressSanitizer, registration state machine, soak"
  # Installs nightly, miri and rust-src itself; one summary line per tool.
  # Its cargo result lines are indented so the closing tally below counts
  # each native test once, not again under Miri and the sanitizers.
  bash scripts/test-reliability.sh 2>&1 | sed -u 's/^test result: /  [reliability] test result: /'
}

step_bench() {
  step "benchmark smoke run (checks every case runs; no pass/fail on the numbers)"
  # --quick finishes in a few minutes on 2 cores; the binary exits non-zero
  # only if a case fails to run.
  cargo run --release -p uniloop-bench -- --quick
  # Instructions per operation under callgrind (about 30 s): deterministic,
  # so its table is comparable from one machine to the next.
  cargo run --release -p uniloop-bench -- --callgrind
}

# Expand `all` and `quick`, refuse unknown names before anything runs.
RUN=()
for s in "${STEPS[@]}"; do
  case "$s" in
    all) RUN+=("${ALL[@]}") ;;
    quick) RUN+=(native) ;;
    lint|native|readme|wine|neolith|loom|reliability|bench) RUN+=("$s") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --list) printf '%s\n' "${ALL[@]}" quick all; exit 0 ;;
    *) echo "scripts/test.sh: unknown step '$s' (steps: ${ALL[*]} quick all)" >&2; exit 2 ;;
  esac
done

# Keep a copy of everything for the closing tally of cargo's result lines.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
exec > >(tee "$LOG") 2>&1

for s in "${RUN[@]}"; do
  "step_$s"
done

echo
echo "steps passed: ${RUN[*]}"
# One closing line for the whole run, summed from cargo's `test result:` lines.
# (A step with no cargo tests, lint or bench, sums to 0: grep finding
# nothing is no failure.)
passed=$({ grep -aE '^test result: ok\.' "$LOG" || true; } | { grep -aoE 'test result: ok\. [0-9]+ passed' || true; } | awk '{s += $4} END {print s + 0}')
ignored=$({ grep -aE '^test result: ok\.' "$LOG" || true; } | { grep -aoE 'test result: ok\. [0-9]+ passed; 0 failed; [0-9]+ ignored' || true; } | awk '{s += $8} END {print s + 0}')
echo "tests: $passed passed, 0 failed, $ignored skipped"
