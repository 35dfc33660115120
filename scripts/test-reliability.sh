#!/usr/bin/env bash
# The reliability tools, each ending in one summary line:
#
#   miri      cargo +nightly miri test over what does not need sockets
#   tsan      ThreadSanitizer (-Zsanitizer=thread, -Zbuild-std) over the
#             threaded tests, then the C library's test programs
#   asan      AddressSanitizer (+ LeakSanitizer) over the same plus posted I/O,
#             then the C library's test programs
#   proptest  the registration state machine (tests/fuzz_registry.rs)
#   fuzz      cargo fuzz: the four targets in fuzz/fuzz_targets/ (the line
#             splitter, the talker's telnet and MCP readers, the C API's
#             call sequences), 60 s each
#   soak      scripts/soak.sh --short: the echo example under churn, both
#             --mode readiness and --mode completion, then the talker
#
#   bash scripts/test-reliability.sh [STEP...]     (default: all, in order)
#
# Environment: UNILOOP_NIGHTLY (default `nightly`) names the toolchain;
# PROPTEST_CASES (default 6000: about 50 s on 2 cores) the state machine's
# cases per backend; FUZZ_SECONDS (default 60) each fuzz target's run;
# SOAK=long runs the 60 s soak instead of the 15 s one.
# scripts/test.sh calls this with no arguments. It installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

NIGHTLY="${UNILOOP_NIGHTLY:-nightly}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
HOST=x86_64-unknown-linux-gnu
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(miri tsan asan proptest fuzz soak)
SUMMARY=()
START=$SECONDS

step() { printf '\n=== reliability: %s\n' "$*"; }
summary() { echo "$1"; SUMMARY+=("$1"); }

# Sums cargo's `test result:` lines in a log: "<passed> <filtered out>".
tally() {
  grep -aoE 'test result: ok\. [0-9]+ passed; 0 failed; [0-9]+ ignored; [0-9]+ measured; [0-9]+ filtered out' "$1" \
    | awk '{p += $4; f += $12} END {print p + 0, f + 0}'
}

nightly() {
  if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$NIGHTLY" --profile minimal
  fi
  rustup +"$NIGHTLY" component add rust-src "$@" >/dev/null
}

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

# ---------------------------------------------------------------- Miri
# Runs: the completion protocol's state machine over a counting doorbell
# (completion::tests, threads included), the registry, the timer wheel, the
# console's line handling, the runtime's unit tests that need only epoll and
# an eventfd (Miri emulates both), tests/lines.rs, tests/queue.rs (the queue,
# its parking, `signal` into a runtime) and tests/worker.rs.
#
# Excluded, and why:
#  * runtime::tests::at_most_one_ring_per_sleep (200,000 posts) and
#    no_ring_while_the_loop_is_awake (10,000 posts), timer::tests::
#    memory_tracks_live_timers_after_mass_cancel (20,000 timers),
#    tests/lines.rs every_cut_point / *_linear_work / 5 MB flood /
#    the proptest, tests/queue.rs the 4x2 stress test: the same code paths
#    as the tests that run, at sizes that take Miri many minutes each.
#    (tests/queue.rs's 1000-through-32, multiple_producers and
#    signal_with_a_producer_thread run at smaller sizes under cfg(miri).)
#  * sys::unix::poll::tests: they make sockets; Miri has no socket(2).
#    The runtime's own tests that go over every backend skip poll under
#    Miri (it has no poll(2)).
#  * sys::unix::uring::tests: io_uring; Miri has no io_uring_setup(2) (the
#    probe says Unsupported under Miri, so nothing else tries one).
#  * tests/worker.rs a_failed_spawn_returns_the_error_and_leaks_nothing:
#    Miri ignores the requested stack size, so the 1 PiB stack it asks for
#    is granted and the spawn does not fail.
#  * timer::tests::model and the other proptest models: proptest's failure
#    persistence reads the working directory, which Miri's isolation
#    refuses; they run natively in scripts/test.sh.
#  * tests/contract.rs, posted_io, accept, stale, unix, signals, console,
#    echo_example, pool (results through sockets or a Runtime with sockets,
#    real signals, child processes), fuzz_registry: TCP sockets, signals or
#    processes, none of which Miri emulates. Their memory safety is what
#    ASan (below) checks.
#  * tests/posted_unix.rs (posted I/O over a UnixStream pair, written for
#    Miri): the current nightly's Miri emulates epoll edge-triggered only
#    ("epoll_ctl: epollet flag must be included") and the runtime registers
#    sources level-triggered; the test runs natively, and ASan checks the
#    same bookkeeping through tests/posted_io.
#  * tests/pool.rs: WorkerPool works under Miri but its tests wait on
#    results through the runtime for seconds of virtual time per test;
#    covered by TSan and ASan.
miri() {
  step "miri"
  nightly miri
  cargo +"$NIGHTLY" miri setup >/dev/null 2>&1
  local log="$LOGS/miri"
  : >"$log"
  cargo +"$NIGHTLY" miri test -p uniloop --lib -- \
    --skip runtime::tests::at_most_one_ring_per_sleep \
    --skip runtime::tests::no_ring_while_the_loop_is_awake \
    --skip timer::tests::memory_tracks_live_timers_after_mass_cancel \
    --skip sys::unix::poll::tests --skip sys::unix::uring::tests \
    --skip timer::tests::model 2>&1 | tee -a "$log"
  cargo +"$NIGHTLY" miri test -p uniloop --test lines -- \
    --skip every_cut_point --skip linear_work --skip flood --skip any_chunking 2>&1 | tee -a "$log"
  cargo +"$NIGHTLY" miri test -p uniloop --test queue -- \
    --skip stress --skip matches_a_vecdeque 2>&1 | tee -a "$log"
  cargo +"$NIGHTLY" miri test -p uniloop --test worker -- \
    --skip a_failed_spawn 2>&1 | tee -a "$log"
  read -r passed excluded < <(tally "$log")
  summary "miri: $passed passed, $excluded excluded (see the list in scripts/test-reliability.sh), no UB"
}

# ---------------------------------------------------------- sanitizers
# The contract suite's threaded tests: completions from other threads,
# wake-ups, drop while threads post, a runtime moved between threads.
CONTRACT_THREADED=(posts wake drop moves_to_another completions)

sanitized() { # <sanitizer> <extra cargo args...> -- <test args...>
  local san=$1; shift
  RUSTFLAGS="-Zsanitizer=$san" RUSTDOCFLAGS="-Zsanitizer=$san" \
    cargo +"$NIGHTLY" test -Zbuild-std --target "$HOST" \
    --target-dir "$TARGET_DIR/$san" -p uniloop "$@"
}

# ThreadSanitizer: std is rebuilt with -Zbuild-std so its own atomics are
# instrumented (without it TSan reports false races inside std's sync
# primitives). No suppressions are needed: the run is clean. If one ever
# is, add it to scripts/sanitizers/tsan.supp with the reason above it and
# pass suppressions=... here.
tsan() {
  step "tsan"
  nightly
  local log="$LOGS/tsan"
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  sanitized thread --lib -- completion:: 2>&1 | tee "$log"
  sanitized thread --test contract -- "${CONTRACT_THREADED[@]}" 2>&1 | tee -a "$log"
  sanitized thread --test queue --test worker --test pool 2>&1 | tee -a "$log"
  if grep -aq 'WARNING: ThreadSanitizer' "$log"; then echo "tsan: reports above"; exit 1; fi
  read -r passed _ < <(tally "$log")
  summary "tsan: $passed passed (completions, contract threaded, queue, worker, pool), clean"
  c_sanitized thread
  unset TSAN_OPTIONS
}

# AddressSanitizer with LeakSanitizer (ASan's default on Linux).
asan() {
  step "asan"
  nightly
  local log="$LOGS/asan"
  export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1"
  sanitized address --lib 2>&1 | tee "$log"
  sanitized address --test contract -- "${CONTRACT_THREADED[@]}" 2>&1 | tee -a "$log"
  sanitized address --test queue --test worker --test pool --test posted_io 2>&1 | tee -a "$log"
  if grep -aqE 'ERROR: (AddressSanitizer|LeakSanitizer)' "$log"; then echo "asan: reports above"; exit 1; fi
  read -r passed _ < <(tally "$log")
  summary "asan: $passed passed (lib, contract threaded, queue, worker, pool, posted_io), clean, no leaks"
  c_sanitized address
  unset ASAN_OPTIONS
}

# The C library's test programs (crates/uniloop-capi/tests/c/*.c and
# examples/*.c, compiled as tests/c.rs compiles them; that test also runs
# them natively and under valgrind) against libuniloop.a built with the
# same sanitizer and -Zbuild-std, the C compiled by gcc with
# -fsanitize=<sanitizer>. One sanitizer runtime per program:
#  * address: gcc links its own (GCC 12's libasan). The Rust code's
#    instrumentation calls the same interface (__asan_version_mismatch_
#    check_v8, __asan_report_load8...); checked once by hand: a Rust
#    staticlib reading one byte past a Vec, built and linked this way,
#    stops with "AddressSanitizer: heap-buffer-overflow".
#  * thread: GCC 12's libtsan lacks __tsan_memcpy, __tsan_memmove and
#    __tsan_memset, which rustc's LLVM emits for copies, so the link fails
#    against it. The programs link rustc's own TSan runtime instead
#    (librustc-<channel>_rt.tsan.a in the toolchain, whole, as rustc links
#    it into Rust executables), which gcc's instrumentation calls just as
#    well; checked once by hand: a C data race between two pthreads, built
#    and linked this way, is reported.
# So clang is not needed. No suppressions.
c_sanitized() { # <address|thread>
  local san=$1 short
  short=$([ "$san" = address ] && echo asan || echo tsan)
  local log="$LOGS/c-$san" out="$TARGET_DIR/$san/c-tests"
  RUSTFLAGS="-Zsanitizer=$san" cargo +"$NIGHTLY" build -Zbuild-std --target "$HOST" \
    --target-dir "$TARGET_DIR/$san" -p uniloop-capi
  local link=(-fsanitize=address)
  if [ "$san" = thread ]; then
    local rt
    rt=$(ls "$(rustc +"$NIGHTLY" --print sysroot)/lib/rustlib/$HOST/lib/"librustc-*_rt.tsan.a)
    link=(-Wl,--whole-archive "$rt" -Wl,--no-whole-archive)
  fi
  local lib="$TARGET_DIR/$san/$HOST/debug/libuniloop.a" src name ok=0 all=0 failed=()
  mkdir -p "$out"
  out=$(cd "$out" && pwd) # the programs run in a scratch directory
  : >"$log"
  for src in crates/uniloop-capi/tests/c/*.c crates/uniloop-capi/examples/*.c; do
    name=$(basename "$src" .c)
    all=$((all + 1))
    cc -std=c11 -Wall -Wextra -Werror -g -D_GNU_SOURCE -fsanitize="$san" -fno-omit-frame-pointer \
      -I crates/uniloop-capi/include -c "$src" -o "$out/$name.o"
    cc "$out/$name.o" "$lib" "${link[@]}" -lpthread -ldl -lm -o "$out/$name"
    echo "--- C test $name under $short" >>"$log"
    if (cd "$LOGS" && UNILOOP_C_TEST_UNDER="$short" "$out/$name" </dev/null) >>"$log" 2>&1; then
      ok=$((ok + 1))
    else
      failed+=("$name")
    fi
  done
  if [ ${#failed[@]} -gt 0 ] || grep -aqE "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer" "$log"; then
    cat "$log"
    echo "$short C tests: failed: ${failed[*]:-none, but the sanitizer reported}"
    exit 1
  fi
  summary "$short C tests: $ok of $all C programs passed (libuniloop.a -Zsanitizer=$san, C by gcc -fsanitize=$san), clean"
}

# -------------------------------------------------- fuzzing / proptest
proptest_registry() {
  step "proptest registry state machine"
  local cases="${PROPTEST_CASES:-6000}"
  local log="$LOGS/proptest"
  PROPTEST_CASES=$cases cargo test -p uniloop --test fuzz_registry 2>&1 | tee "$log"
  read -r passed _ < <(tally "$log")
  summary "proptest registry: $cases cases on each of epoll and poll, $passed tests passed (the regression cases included), ok"
}

# cargo fuzz (libFuzzer): coverage-guided byte streams where proptest's
# random ones reach less. One target after another, FUZZ_SECONDS each:
#
#   line_splitter  uniloop's LineSplitter, any bytes cut anywhere
#   telnet         the talker's telnet decoder (talker::telnet)
#   mcp            the talker's MCP reader: stdin framed as uniloop's
#                  Console frames it, each line to talker::mcp::McpSession
#   capi_calls     sequences of calls into libuniloop's exported C
#                  functions with valid, NULL, closed and foreign handles
#                  and fds, against a model (what it covers and leaves out:
#                  the doc comment of fuzz/fuzz_targets/capi_calls.rs)
#
# The committed corpus (fuzz/corpus/<target>) seeds a scratch copy, so a CI
# run leaves the tree as it was; a crash lands in fuzz/artifacts/<target>/
# and fails the step.
FUZZ_TARGETS=(line_splitter telnet mcp capi_calls)
fuzz() {
  step "fuzz"
  nightly
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  local secs="${FUZZ_SECONDS:-60}" target
  for target in "${FUZZ_TARGETS[@]}"; do
    local log="$LOGS/fuzz-$target" scratch="$LOGS/corpus-$target"
    mkdir -p "$scratch"
    cargo +"$NIGHTLY" fuzz run --fuzz-dir fuzz --target-dir "$TARGET_DIR/fuzz" "$target" \
      "$scratch" "fuzz/corpus/$target" -- -max_total_time="$secs" 2>&1 | tee "$log"
    local runs
    runs=$(grep -aoE 'Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1)
    summary "fuzz $target: ${runs:-?} runs in $secs s, corpus $(find "fuzz/corpus/$target" -type f | wc -l) seeds + $(find "$scratch" -type f | wc -l) found, no crash"
  done
}

# The echo example both ways of serving connections: readiness (its own
# reads and writes) and completion mode (posted reads and writes, one
# buffer each); then the talker, its clients logging in and chatting.
soak() {
  step "soak"
  local log="$LOGS/soak" mode=--short
  [ "${SOAK:-short}" = long ] && mode=
  for serve in readiness completion; do
    bash scripts/soak.sh $mode --target echo --mode "$serve" 2>&1 | tee "$log"
    summary "$(grep -a '^soak: [0-9]* connections' "$log" | tail -1 | sed "s/^soak:/soak (echo, $serve):/")"
  done
  bash scripts/soak.sh $mode --target talker 2>&1 | tee "$log"
  summary "$(grep -a '^soak: [0-9]* connections' "$log" | tail -1 | sed "s/^soak:/soak (talker):/")"
}

for s in "${STEPS[@]}"; do
  case "$s" in
    miri) miri ;;
    tsan) tsan ;;
    asan) asan ;;
    proptest) proptest_registry ;;
    fuzz) fuzz ;;
    soak) soak ;;
    *) echo "unknown step $s (miri tsan asan proptest fuzz soak)"; exit 2 ;;
  esac
done

echo
echo "=== reliability summary ($((SECONDS - START)) s)"
printf '%s\n' "${SUMMARY[@]}"
