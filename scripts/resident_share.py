#!/usr/bin/env python3
"""Which code of a running program is resident, by whose code it is.

    python3 scripts/resident_share.py PID EXECUTABLE LIBRARY.a

For each mapping of EXECUTABLE in process PID (text, read-only data,
data), counts the resident 4 KiB pages (/proc/PID/pagemap, as root) and
gives each page to the owner of most of its bytes:

* library: a text symbol LIBRARY.a defines (a Rust archive built with LTO
  holds the runtime and the parts of the standard library it uses, so its
  symbols are the library's whole cost in the program);
* of which the symboliser: the standard library's backtrace printer
  (gimli, addr2line, miniz_oxide, rustc_demangle), which only a panic
  with RUST_BACKTRACE set runs, resident only as a neighbour of code that
  runs;
* program: the program's other symbols;
* unnamed: pages no symbol covers (read-only data without symbols:
  `.eh_frame`, string constants).

A page the kernel maps in is resident whether or not it ran: a fault maps
the page cache's neighbours too (`fault_around_bytes`, 64 KiB by default),
so resident text follows the code's size and layout as much as what runs.

Needs `nm`; reads only /proc and what nm prints.
"""

import argparse
import bisect
import collections
import struct
import subprocess
import sys

from perf_share import library_symbols

SYMBOLISER = ("gimli", "addr2line", "miniz_oxide", "rustc_demangle", "backtrace_rs",
              "symbolize")


def symbols(path, defined_only=True):
    args = ["nm", "-S", "-C"] + (["--defined-only"] if defined_only else []) + [path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        try:
            addr, size = int(parts[0], 16), int(parts[1], 16)
        except ValueError:
            continue
        rows.append((addr, size, parts[2], parts[3].strip()))
    return rows


def owner(name, lib):
    if name in lib:
        return "library: symboliser" if any(s in name for s in SYMBOLISER) else "library"
    return "program"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("exe", help="the program's executable (as mapped)")
    ap.add_argument("archive", help="the library's static archive (.a)")
    args = ap.parse_args()

    lib = library_symbols(args.archive)
    syms = sorted((a, s, n) for a, s, t, n in symbols(args.exe) if s > 0 and t in "tTwWrRdDvV")
    starts = [a for a, _, _ in syms]
    widest = max((s for _, s, _ in syms), default=0)
    maps = []
    with open(f"/proc/{args.pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].endswith("/" + args.exe.split("/")[-1]):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, parts[1], int(parts[2], 16)))
    if not maps:
        print(f"{args.exe} is not mapped in process {args.pid}", file=sys.stderr)
        return 1
    # The load bias: the first mapping holds file offset 0 (PIE or not,
    # nm's addresses are the file's virtual addresses).
    bias = min(lo - off for lo, _, _, off in maps)
    resident = collections.Counter()
    total = collections.Counter()
    with open(f"/proc/{args.pid}/pagemap", "rb") as pm:
        for lo, hi, perms, _ in maps:
            for va in range(lo, hi, 4096):
                pm.seek(va // 4096 * 8)
                present = struct.unpack("Q", pm.read(8))[0] >> 63
                fa = va - bias
                counts = collections.Counter()
                i = bisect.bisect_right(starts, fa + 4095) - 1
                while i >= 0 and syms[i][0] + widest > fa:
                    a, s, n = syms[i]
                    overlap = min(a + s, fa + 4096) - max(a, fa)
                    if overlap > 0:
                        counts[owner(n, lib)] += overlap
                    i -= 1
                who = counts.most_common(1)[0][0] if counts else "unnamed"
                key = (perms, who)
                total[key] += 4
                resident[key] += 4 * present
    for key in sorted(total):
        perms, who = key
        print(f"{perms}  {who:22s} resident {resident[key]:6d} KiB of {total[key]:6d}")
    lib_res = sum(v for (p, w), v in resident.items() if w.startswith("library"))
    print(f"library resident: {lib_res} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
