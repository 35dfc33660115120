#!/usr/bin/env python3
"""Load client for scripts/soak.sh: churns loopback connections against the
echo example while sampling the server's RSS and open fds.

Keeps --concurrent connections open at once; each lives for about
duration * concurrent / total seconds (random, 0.5x to 1.5x), sending a
64-byte line every 0.2 s and checking that the echo comes back intact, then
closes and is replaced, until --total connections have been made or
--seconds have passed. Every 5 s it samples VmRSS (/proc/PID/status) and the
number of entries in /proc/PID/fd.

Verdict (exit 1 on failure, one summary line either way):
  * RSS: the last sample under load may exceed the first sample taken with
    the full number of connections open (the warm baseline) by at most
    RSS_TOLERANCE (25%) plus RSS_SLACK_KIB (2 MiB): allocator noise, not a
    leak proportional to the connections churned.
  * fds: after the load stops and every connection has been closed, the
    server must be back to the fd count it had before the load (+2 for a
    late accept racing the sample); during the load it must never hold more
    than the idle count + concurrent + 16.
  * every echo intact, and at least 90% of the connections attempted served.
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


async def one_conn(port, lifetime, stats, stop_at):
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


async def slot(port, mean_life, stats, budget, stop_at):
    # A small random start spreads the first connects over ~1 s.
    await asyncio.sleep(random.random())
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        await one_conn(port, mean_life * random.uniform(0.5, 1.5), stats, stop_at)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--total", type=int, default=2000)
    ap.add_argument("--concurrent", type=int, default=500)
    a = ap.parse_args()

    pid = a.pid
    idle_fds = fds(pid)
    idle_rss = rss_kib(pid)
    mean_life = a.seconds * a.concurrent / a.total
    stats = Stats()
    budget = [a.total]
    t0 = time.monotonic()
    stop_at = t0 + a.seconds
    tasks = [
        asyncio.create_task(slot(a.port, mean_life, stats, budget, stop_at))
        for _ in range(a.concurrent)
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
    if max_fds > idle_fds + a.concurrent + 16:
        reasons.append(f"fds peaked at {max_fds} (idle {idle_fds})")
    if stats.bad_echo:
        reasons.append(f"{stats.bad_echo} corrupted echoes")
    if stats.served < 0.9 * stats.started:
        reasons.append(f"only {stats.served} of {stats.started} served {stats.errors}")
    ok = not reasons
    print(
        f"soak: {stats.started} connections ({a.concurrent} concurrent) in "
        f"{time.monotonic() - t0:.0f}s, rss start {warm[1]} KiB end {last_rss} KiB "
        f"(idle {idle_rss}, after {end_rss}), fds start {idle_fds} peak {max_fds} "
        f"end {end_fds}: " + ("ok" if ok else "FAILED: " + "; ".join(reasons))
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
