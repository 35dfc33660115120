#!/usr/bin/env bash
# Soak: a server under 2,000 churning loopback connections, 500 open at
# once, for 60 s; RSS and open fds sampled every 5 s; fails on growth beyond
# the tolerance stated in scripts/soak_client.py (RSS: +25% + 2 MiB over the
# warm sample; fds: back to the idle count after the load).
#
#   bash scripts/soak.sh [--short] [--target echo|talker] [--mode readiness|completion]
#
# --target echo (the default): the echo example (crates/uniloop/examples/
# echo.rs), served in --mode readiness or completion; each client checks
# its echoes. --target talker: the talker (crates/talker), each client
# logging in, walking to a room and chatting (see soak_client.py).
# --short: 15 s (CI). Every run churns 2,000 connections in total, so a
# connection lives about 15 s (long) or 4 s (short).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
mode=readiness
what=echo
while [ $# -gt 0 ]; do
  case "$1" in
    --short) seconds=15 ;;
    --mode) mode="$2"; shift ;;
    --target) what="$2"; shift ;;
    *) echo "usage: soak.sh [--short] [--target echo|talker] [--mode readiness|completion]" >&2; exit 2 ;;
  esac
  shift
done
case "$what" in echo | talker) ;; *) echo "soak.sh: --target echo or talker" >&2; exit 2 ;; esac

# 500 client sockets + 500 server sockets in one process tree: well above
# the usual 1,024 soft limit once both sides are counted, so raise it.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

target="${CARGO_TARGET_DIR:-target}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
if [ "$what" = echo ]; then
  cargo build -q --release -p uniloop --example echo
  # The example prints every event; only the exit status matters here.
  "$target/release/examples/echo" --addr "127.0.0.1:$port" --seconds $((seconds + 30)) \
    --mode "$mode" >/dev/null &
else
  cargo build -q --release -p talker --bin talker
  # Its log (a line per connection) and console output are not needed;
  # a fresh data directory, so every name is new. Every client comes from
  # 127.0.0.1 and tells five lines a second, and 2,000 logins hash their
  # passwords: the per-address cap and flood control are lifted and the
  # hashes made cheap.
  "$target/release/talker" --addr "127.0.0.1:$port" --data-dir "$data" \
    --max-clients 1000 --max-per-address 1000 --flood-rate 0 --argon2-memory 64 \
    </dev/null >/dev/null 2>"$data/talker.log" &
fi
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT

# Wait for the listener (bounded).
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null && break
  sleep 0.1
done

status=0
python3 scripts/soak_client.py --pid "$server" --port "$port" --seconds "$seconds" \
  --total 2000 --concurrent 500 --protocol "$what" || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  echo "soak: the $what server died during the run"; exit 1
fi
kill -TERM "$server"
wait "$server" || {
  echo "soak: the $what server exited with an error after SIGTERM"
  [ -s "$data/talker.log" ] && tail -5 "$data/talker.log"
  exit 1
}
rm -rf "$data"
trap - EXIT
exit "$status"
