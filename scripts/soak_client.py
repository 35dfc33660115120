#!/usr/bin/env python3
"""Load client for scripts/soak.sh: churns loopback connections against the
echo example or the talker while sampling the server's RSS and open fds.

Keeps --concurrent connections open at once; each lives for about
duration * concurrent / total seconds (random, 0.5x to 1.5x), then closes
and is replaced, until --total connections have been made or --seconds have
passed. Every 5 s it samples VmRSS (/proc/PID/status) and the number of
entries in /proc/PID/fd.

What a connection does:
  * --protocol echo: sends a 64-byte line every 0.2 s and checks that the
    echo comes back intact.
  * --protocol talker: waits for the name prompt, logs in under its slot's
    name (soak0..soak499: a slot's connections follow one another, so a
    name is never on twice, and the talker's user records stay at
    --concurrent instead of growing with the churn), walks to one of the
    four rooms, then every 0.2 s sends
    `tell <itself> <payload>` and checks that both "You tell NAME: payload"
    and "NAME tells you: payload" come back; every 25th message is a `say`
    instead (heard by everyone in the room), checked by "You say: payload".
    Everything else the talker sends (arrivals, departures, other people's
    says) is read and skipped. Ends with `quit` and waits for the goodbye.

Verdict (exit 1 on failure, one summary line either way):
  * RSS: the last sample under load may exceed the first sample taken with
    the full number of connections open (the warm baseline) by at most
    RSS_TOLERANCE (25%) plus RSS_SLACK_KIB (2 MiB): allocator noise, not a
    leak proportional to the connections churned.
  * fds: after the load stops and every connection has been closed, the
    server must be back to the fd count it had before the load (+2 for a
    late accept racing the sample); during the load it must never hold more
    than the idle count + concurrent + 16 (echo) or + 100 (talker: it
    closes a socket once the goodbye is out and the client has hung up, so
    a slot's next connection may be accepted while its last one closes).
  * every echo (every talker reply) intact, and at least 90% of the
    connections attempted served.
"""

import argparse
import asyncio
import os
import random
import sys
import time

RSS_TOLERANCE = 0.25
RSS_SLACK_KIB = 2048
SAMPLE_EVERY = 5.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Stats:
    def __init__(self):
        self.started = 0
        self.served = 0
        self.failed = 0
        self.bad_echo = 0
        self.open = 0
        self.errors = {}


async def one_conn(port, lifetime, stats, stop_at, _name):
    stats.started += 1
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout=10
        )
    except Exception as e:  # connection refused / timeout: counted, not fatal
        stats.failed += 1
        stats.errors[type(e).__name__] = stats.errors.get(type(e).__name__, 0) + 1
        return
    stats.open += 1
    try:
        end = min(time.monotonic() + lifetime, stop_at)
        n = 0
        while time.monotonic() < end:
            line = (f"{id(writer):x}:{n:08d}:".ljust(63, "x") + "\n").encode()
            writer.write(line)
            await writer.drain()
            got = await asyncio.wait_for(reader.readexactly(len(line)), timeout=10)
            if got != line:
                stats.bad_echo += 1
                break
            n += 1
            await asyncio.sleep(0.2)
        stats.served += 1
    except Exception as e:
        stats.failed += 1
        stats.errors[type(e).__name__] = stats.errors.get(type(e).__name__, 0) + 1
    finally:
        stats.open -= 1
        writer.close()
        try:
            await writer.wait_closed()
        except Exception:
            pass


class Talk:
    """A talker connection's input: read in chunks, searched for what the
    client waits for; what comes before it is skipped."""

    def __init__(self, reader):
        self.reader = reader
        self.buf = b""

    async def expect(self, *wanted, timeout=10):
        deadline = time.monotonic() + timeout
        for w in wanted:
            while True:
                i = self.buf.find(w)
                if i >= 0:
                    self.buf = self.buf[i + len(w):]
                    break
                # Keep a tail in case `w` straddles two reads.
                self.buf = self.buf[-len(w):]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {w!r}")
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout=left)
                if not chunk:
                    raise ConnectionError(f"closed before {w!r}")
                self.buf += chunk


ROOMS = ["lobby", "garden", "library", "cafe"]
# Names whose account exists (a slot's connections follow one another).
REGISTERED = set()


async def talker_conn(port, lifetime, stats, stop_at, name):
    stats.started += 1
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout=10
        )
    except Exception as e:
        stats.failed += 1
        stats.errors[type(e).__name__] = stats.errors.get(type(e).__name__, 0) + 1
        return
    stats.open += 1
    talk = Talk(reader)
    try:
        await talk.expect(b"By what name are you known?")
        writer.write(f"{name}\r\n".encode())
        # A new name chooses its password (typed twice); a known one gives it.
        password = f"pw-{name}\r\n".encode()
        if name in REGISTERED:
            await talk.expect(b"Password:")
            writer.write(password)
        else:
            await talk.expect(b"Choose a password:")
            writer.write(password)
            await talk.expect(b"Type it again:")
            writer.write(password)
            REGISTERED.add(name)
        # "Welcome, NAME!" the first time, "Welcome back, NAME!" after.
        await talk.expect(f"{name}! Type 'help'".encode())
        room = random.choice(ROOMS)
        if room != "lobby":
            writer.write(f"go {room}\r\n".encode())
        end = min(time.monotonic() + lifetime, stop_at)
        n = 0
        while time.monotonic() < end:
            payload = f"{n:08d}:".ljust(40, "x")
            if n % 25 == 24:
                writer.write(f"say {payload}\r\n".encode())
                await writer.drain()
                await talk.expect(f"You say: {payload}".encode())
            else:
                writer.write(f"tell {name} {payload}\r\n".encode())
                await writer.drain()
                # The talker sends the recipient's line first.
                await talk.expect(
                    f"{name} tells you: {payload}".encode(),
                    f"You tell {name}: {payload}".encode(),
                )
            n += 1
            await asyncio.sleep(0.2)
        writer.write(b"quit\r\n")
        await talk.expect(f"Goodbye, {name}!".encode())
        stats.served += 1
    except Exception as e:
        stats.failed += 1
        stats.errors[type(e).__name__] = stats.errors.get(type(e).__name__, 0) + 1
    finally:
        stats.open -= 1
        writer.close()
        try:
            await writer.wait_closed()
        except Exception:
            pass


async def slot(conn, n, port, mean_life, stats, budget, stop_at):
    # A small random start spreads the first connects over ~1 s.
    await asyncio.sleep(random.random())
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        await conn(port, mean_life * random.uniform(0.5, 1.5), stats, stop_at, f"soak{n}")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--total", type=int, default=2000)
    ap.add_argument("--concurrent", type=int, default=500)
    ap.add_argument("--protocol", choices=["echo", "talker"], default="echo")
    a = ap.parse_args()
    conn = talker_conn if a.protocol == "talker" else one_conn

    pid = a.pid
    idle_fds = fds(pid)
    idle_rss = rss_kib(pid)
    mean_life = a.seconds * a.concurrent / a.total
    stats = Stats()
    budget = [a.total]
    t0 = time.monotonic()
    stop_at = t0 + a.seconds
    tasks = [
        asyncio.create_task(slot(conn, n, a.port, mean_life, stats, budget, stop_at))
        for n in range(a.concurrent)
    ]
    samples = []  # (t, rss, fds, open)
    warm = None
    max_fds = idle_fds
    ok = True
    while any(not t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=SAMPLE_EVERY)
        t = time.monotonic() - t0
        s = (t, rss_kib(pid), fds(pid), stats.open)
        samples.append(s)
        max_fds = max(max_fds, s[2])
        if warm is None and stats.open >= a.concurrent * 0.9:
            warm = s
        print(
            f"soak: t={t:5.1f}s rss={s[1]} KiB fds={s[2]} open={s[3]} "
            f"made={stats.started} served={stats.served} failed={stats.failed}",
            flush=True,
        )
    # Let the server see the last FINs.
    deadline = time.monotonic() + 5
    while fds(pid) > idle_fds + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    end_fds = fds(pid)
    end_rss = rss_kib(pid)

    reasons = []
    if warm is None:
        warm = samples[0] if samples else (0, idle_rss, idle_fds, 0)
        reasons.append(f"never reached {a.concurrent} open connections")
    under_load = [s for s in samples if s[3] > 0] or samples
    last_rss = under_load[-1][1]
    limit = warm[1] * (1 + RSS_TOLERANCE) + RSS_SLACK_KIB
    if last_rss > limit:
        reasons.append(f"rss grew {warm[1]} -> {last_rss} KiB (limit {limit:.0f})")
    if end_fds > idle_fds + 2:
        reasons.append(f"fds {idle_fds} idle -> {end_fds} after the load")
    # The talker closes a socket once its goodbye is out and the client
    # has hung up, so a slot's next connection may be accepted while the
    # last one is still closing: more room above `concurrent` there.
    slack = 16 if a.protocol == "echo" else 100
    if max_fds > idle_fds + a.concurrent + slack:
        reasons.append(f"fds peaked at {max_fds} (idle {idle_fds})")
    if stats.bad_echo:
        reasons.append(f"{stats.bad_echo} corrupted echoes")
    if stats.served < 0.9 * stats.started:
        reasons.append(f"only {stats.served} of {stats.started} served {stats.errors}")
    ok = not reasons
    print(
        f"soak: {stats.started} connections ({a.concurrent} concurrent) in "
        f"{time.monotonic() - t0:.0f}s, {stats.served} served, rss start {warm[1]} KiB end {last_rss} KiB "
        f"(idle {idle_rss}, after {end_rss}), fds start {idle_fds} peak {max_fds} "
        f"end {end_fds}: " + ("ok" if ok else "FAILED: " + "; ".join(reasons))
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
