#!/usr/bin/env python3
"""A library's share of a program's perf samples, with its system calls apart.

    perf record -F 4999 -g -p PID -o perf.data -- sleep 30
    python3 scripts/perf_share.py perf.data LIBRARY.a [--wrappers epoll_ctl,epoll_wait]

LIBRARY.a names the functions that count as the library's: every text
symbol it defines (a Rust archive built with LTO inlines the runtime into
the C entry points, so matching by name prefix would miss or double
count). The program must be statically linked with it, as a drop-in is.

A sample taken on the return from a system call lands on the instruction
after the `syscall`. uniloop makes its system calls inline (rustix), so
those samples fall in its own functions; a C library calling libc's
`epoll_ctl` has them in libc. To compare like with like the script
prints, for each library:

* share: all samples in the library's functions;
* at syscalls: the part of it on the instruction after a `syscall`;
* bookkeeping: the rest, what the library's own code costs;
* wrappers: samples in the named libc functions (`--wrappers`), the
  system calls a C library makes through libc.

Needs `perf` and `nm`; reads only what perf and nm print.
"""

import argparse
import re
import subprocess
import sys


def library_symbols(archive):
    out = subprocess.run(
        ["nm", "-C", "--defined-only", archive],
        capture_output=True, text=True, check=True,
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            names.add(parts[2].strip())
    return names


def report_rows(data):
    """(percent, dso, symbol) for every symbol with samples (self time)."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
         "--stdio", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3).strip()))
    return rows


def syscall_fraction(data, symbol):
    """The fraction of a symbol's samples on the instruction after a syscall."""
    out = subprocess.run(
        ["perf", "annotate", "-i", data, "--stdio", "-s", symbol],
        capture_output=True, text=True,
    ).stdout
    frac = 0.0
    prev = ""
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)\s*:\s+[0-9a-f]+:\s+(\S+)", line)
        if not m:
            continue
        if prev == "syscall":
            frac += float(m.group(1)) / 100.0
        prev = m.group(2)
    return min(frac, 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="perf.data of the program")
    ap.add_argument("archive", help="the library's static archive (.a)")
    ap.add_argument("--wrappers", default="epoll_ctl,epoll_wait",
                    help="libc functions counted as the system calls' wrappers")
    ap.add_argument("--top", type=int, default=10, help="functions to list")
    args = ap.parse_args()

    names = library_symbols(args.archive)
    wrappers = set(w for w in args.wrappers.split(",") if w)
    share = at_syscalls = wrapped = 0.0
    rows = []
    for pct, dso, sym in report_rows(args.data):
        if dso.startswith("libc.so") and sym in wrappers:
            wrapped += pct
        elif not dso.startswith("[") and not dso.endswith(".so") and ".so." not in dso \
                and sym in names:
            sc = pct * syscall_fraction(args.data, sym) if pct >= 0.05 else 0.0
            share += pct
            at_syscalls += sc
            rows.append((pct, sc, sym))
    print(f"share {share:.2f} %  at syscalls {at_syscalls:.2f} %  "
          f"bookkeeping {share - at_syscalls:.2f} %  wrappers {wrapped:.2f} %")
    for pct, sc, sym in sorted(rows, reverse=True)[: args.top]:
        print(f"  {pct:5.2f} % ({sc:4.2f} at syscalls)  {sym[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
