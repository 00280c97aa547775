#!/usr/bin/env python3
"""bench/ncu_sass_summary.py - sum the PC samples of an ncu source export by function and stall reason.

Reads the CSV that bench/ncu_decode_step.sh writes (`ncu --import R --page source --csv --print-source
sass`, gzipped or not) and prints: the samples per stall reason; the samples per function (the SASS is
cut at the targets of CALL instructions, so each not-inlined callee is its own range, named by what it
contains); the instructions with the most samples.

    python3 bench/ncu_sass_summary.py ds_sass.csv.gz [top]
"""
import collections
import csv
import gzip
import re
import sys


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = list(csv.reader(f))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    return rows[head], [r for r in rows[head + 1:] if len(r) == len(rows[head])]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    h, data = load(sys.argv[1])
    if not data:
        sys.exit("no SASS rows in " + sys.argv[1])
    col = {n: i for i, n in enumerate(h)}
    isrc, iall = col["Source"], col["Warp Stall Sampling (All Samples)"]
    reasons = [n for n in h if n.startswith("stall_") and "Not Issued" not in n]
    samples = [int(r[iall] or 0) for r in data]
    total = sum(samples) or 1
    print(f"{len(data)} instructions, {total} samples")

    by_reason = {n[6:]: sum(int(r[col[n]] or 0) for r in data) for n in reasons}
    for n, v in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        if v:
            print(f"  {n:18s} {v:8d} {100 * v / total:5.1f}%")

    base = int(data[0][col["Address"]], 16)
    starts = {0}
    for r in data:
        m = re.search(r"CALL\.\S+ (0x[0-9a-f]+)", r[isrc])
        if m:
            starts.add((int(m.group(1), 16) - base) // 16)
    starts = sorted(s for s in starts if 0 <= s < len(data))
    print("functions (cut at CALL targets):")
    for a, b in zip(starts, starts[1:] + [len(data)]):
        seg = data[a:b]
        s = sum(samples[a:b])
        ops = collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", r[isrc].strip()).split(" ")[0].split(".")[0] for r in seg)
        what = "producer (UBLKCP)" if ops["UBLKCP"] else "attention (SHFL, MUFU)" if ops["SHFL"] > 100 and a else ""
        rs = collections.Counter()
        for r in seg:
            for n in reasons:
                rs[n[6:]] += int(r[col[n]] or 0)
        if s:
            print(f"  [{a:6d}, {b:6d}) {s:8d} {100 * s / total:5.1f}% {what:24s} " +
                  ", ".join(f"{k} {v}" for k, v in rs.most_common(4)))

    print(f"top {top} instructions:")
    for k in sorted(sorted(range(len(data)), key=lambda k: -samples[k])[:top]):
        r = data[k]
        rs = sorted(((int(r[col[n]] or 0), n[6:]) for n in reasons), reverse=True)[:2]
        print(f"  {k:6d} {samples[k]:7d} {100 * samples[k] / total:5.2f}% {r[isrc].strip()[:58]:58s} " +
              ", ".join(f"{n} {v}" for v, n in rs if v))


if __name__ == "__main__":
    main()
