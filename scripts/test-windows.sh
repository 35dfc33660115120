#!/usr/bin/env bash
# The Windows (IOCP) build and tests, run under Wine on Linux:
# `cargo test -p uniloop --target x86_64-pc-windows-gnu` with Wine as the
# test runner. Installs what it needs when missing; see shared/WINE.md.
#
# Then the C library: builds uniloop.dll, its import library and the
# static libuniloop.a for that target, cross-compiles every C test in
# crates/uniloop-capi/tests/c/ (and examples/) with mingw, once against the
# DLL and once against the static library, and runs each under Wine.
# `--c-only` skips the Rust part.
#
# Everything Windows-specific is passed here (environment variables), not
# in .cargo/config.toml, so a plain `cargo test` stays native.
set -euo pipefail
cd "$(dirname "$0")/.."

C_ONLY=0
if [ "${1:-}" = "--c-only" ]; then
  C_ONLY=1
  shift
fi

TARGET=x86_64-pc-windows-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$PWD/$TARGET_DIR" ;; esac
# The Wine prefix (~700 MB, made on first use) and the stand-in DLL.
WINE_DIR="$TARGET_DIR/wine"

if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  echo "installing wine and mingw-w64"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq wine wine64 gcc-mingw-w64-x86-64 >/dev/null
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi

# Wine 8.0 has no bcryptprimitives.dll, which Rust's std imports (ProcessPrng).
mkdir -p "$WINE_DIR/dll"
DLL="$WINE_DIR/dll/bcryptprimitives.dll"
if [ ! -f "$DLL" ] || [ scripts/wine/bcryptprimitives.c -nt "$DLL" ] \
    || [ scripts/wine/bcryptprimitives.def -nt "$DLL" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$DLL" \
    scripts/wine/bcryptprimitives.c scripts/wine/bcryptprimitives.def -ladvapi32
fi

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
export WINEPREFIX="$WINE_DIR/prefix"
export WINEDEBUG=-all
export WINEPATH="$WINE_DIR/dll"
# No display here; keep Wine from trying to start one, and from offering
# to install Mono and Gecko into a new prefix (the tests need neither).
unset DISPLAY
export WINEDLLOVERRIDES="mscoree,mshtml="
# Leave no wineserver behind for this prefix (it lingers a few seconds).
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

# The C library's tests, built with mingw and run under Wine. A C file
# that cannot run on Windows says so in a line
#   /* uniloop-test: posix-only: <reason> */
# and is listed as skipped with that reason.
c_tests_windows() {
  local capi=crates/uniloop-capi
  local lib_dir="$TARGET_DIR/$TARGET/debug"
  local out="$TARGET_DIR/$TARGET/c-tests"
  cargo build -q -p uniloop-capi --target "$TARGET"
  for f in uniloop.dll libuniloop.dll.a libuniloop.a; do
    [ -f "$lib_dir/$f" ] || { echo "C library for Windows: $f was not built"; exit 1; }
  done
  mkdir -p "$out"
  # Next to the executables, where Windows looks for a DLL first.
  cp "$lib_dir/uniloop.dll" "$out/"
  # What rustc says a static Rust library for this target needs.
  local static_libs="-lkernel32 -lntdll -luserenv -lws2_32 -ldbghelp"
  local passed=0 failed=0 skipped=0 src name reason how exe
  for src in "$capi"/tests/c/*.c "$capi"/examples/*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    reason=$(sed -n 's@.*uniloop-test: posix-only: *\(.*\) \*/.*@\1@p' "$src" | head -n 1)
    if [ -n "$reason" ]; then
      echo "C test $name (Windows): skipped: $reason"
      skipped=$((skipped + 1))
      continue
    fi
    for how in dll static; do
      exe="$out/$name-$how.exe"
      # -lws2_32: the tests that use sockets themselves (runtime_portable.c).
      local link=("$lib_dir/libuniloop.dll.a" -lws2_32)
      [ "$how" = static ] && link=("$lib_dir/libuniloop.a" $static_libs)
      if ! x86_64-w64-mingw32-gcc -std=c11 -Wall -Wextra -Werror -g \
          -I "$capi/include" "$src" "${link[@]}" -o "$exe"; then
        echo "C test $name (Windows, $how): compile failed"
        failed=$((failed + 1))
        continue
      fi
      if (cd "$out" && timeout 300 wine "$exe" </dev/null >"$exe.log" 2>&1); then
        echo "C test $name (Windows, $how): ok"
        passed=$((passed + 1))
      else
        echo "C test $name (Windows, $how): FAILED"
        tr -d '\r' <"$exe.log" | sed 's/^/    /'
        failed=$((failed + 1))
      fi
    done
  done
  echo "C tests (Windows, Wine): $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

if [ "$C_ONLY" -eq 1 ]; then
  c_tests_windows
  exit 0
fi

# tests/console.rs runs examples/console.exe: cargo cannot be started from
# inside Wine to build it, and `cargo test --test X` does not build examples.
cargo build -q -p uniloop --examples --target "$TARGET"

# cargo's own `test result:` lines are the record; a failing test makes
# cargo, and so this script (set -e), exit non-zero.
cargo test -p uniloop --target "$TARGET" "$@"

# A real console: Wine gives one when stdin is a terminal (shared/WINE.md),
# so run the test binaries that need one again on a pseudo-terminal made by
# script(1): console input (windows_console) and a generated Ctrl-C
# (signals). Run under cargo above they had no console and said they
# skipped.
if [ $# -eq 0 ]; then
  for test in windows_console signals; do
    cargo test -q -p uniloop --target "$TARGET" --test "$test" --no-run
    exe=$(ls -t "$TARGET_DIR/$TARGET"/debug/deps/"$test"-*.exe | head -n 1)
    out=$(script -qec "wine '$exe' --nocapture --test-threads 1" /dev/null </dev/null | tr -d '\r')
    printf '%s\n' "$out" | grep -E 'test |SKIPPED' || true
    printf '%s\n' "$out" | grep -q 'SKIPPED' && { echo "$test: a real console could not be had under script(1)"; exit 1; }
    printf '%s\n' "$out" | grep -q 'passed; 0 failed' || { echo "$test: real-console run failed"; exit 1; }
  done
fi
if [ $# -eq 0 ]; then
  c_tests_windows
fi
echo "Windows (Wine) tests passed"
