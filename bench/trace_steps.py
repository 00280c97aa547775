#!/usr/bin/env python3
"""bench/trace_steps.py - per-step kernel time inside CUDA graphs, from a kernel trace CSV (columns
"Start (ns)", "Duration (ns)", "Name": bench/cupti_trace.cc writes it, as does
`nsys stats -r cuda_gpu_trace -f csv` where Nsight Systems exists).

    python3 bench/trace_steps.py /tmp/trace.csv [marker [seq]]

A step ends with a kernel whose name contains `marker` (default k_sample, the device sampler). Over
the middle half of the steps it prints the mean wall time per step, the time the GPU ran at least
one kernel (busy), the idle time between kernels, and per kernel name: launches and GPU time per
step (sorted by time), so launch gaps and per-kernel costs inside a replayed graph are visible.
With seq > 0 it also lists the first seq kernels of the middle step in order (start offset, gap
to the previous kernel's end, duration), e.g. one decoder layer's kernels one by one.
"""
import collections
import csv
import sys


def short(name):
    n = name.split("(")[0]
    if n.startswith("void "):
        n = n[5:]
    return n[:90]


def main():
    path = sys.argv[1]
    marker = sys.argv[2] if len(sys.argv) > 2 else "k_sample"
    rows = list(csv.DictReader(open(path)))
    ks = []
    for r in rows:
        name = r.get("Name", "")
        if name.startswith("[CUDA"):
            continue
        ks.append((int(r["Start (ns)"]), int(r["Duration (ns)"]), short(name)))
    ks.sort()
    ends = [i for i, k in enumerate(ks) if marker in k[2]]
    if len(ends) < 8:
        print(f"nsys_steps: only {len(ends)} steps marked by {marker!r}")
        return
    lo, hi = len(ends) // 4, 3 * len(ends) // 4
    steps = hi - lo
    t0 = ks[ends[lo]][0] + ks[ends[lo]][1]
    t1 = ks[ends[hi]][0] + ks[ends[hi]][1]
    sel = ks[ends[lo] + 1: ends[hi] + 1]
    busy, cur_s, cur_e = 0, None, None
    for s, d, _ in sel:
        e = s + d
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    busy += cur_e - cur_s
    tot = collections.defaultdict(int)
    cnt = collections.Counter()
    for _, d, n in sel:
        tot[n] += d
        cnt[n] += 1
    wall = (t1 - t0) / steps / 1e3
    print(f"steps {steps} (of {len(ends)}): wall {wall:.1f} us/step, kernels {len(sel) / steps:.1f}/step, "
          f"busy {busy / steps / 1e3:.1f} us, idle {wall - busy / steps / 1e3:.1f} us, "
          f"sum of kernel times {sum(tot.values()) / steps / 1e3:.1f} us")
    for n, v in sorted(tot.items(), key=lambda x: -x[1]):
        print(f"  {n:90s} {cnt[n] / steps:6.1f}/step {v / steps / 1e3:8.1f} us/step {v / cnt[n] / 1e3:7.2f} us mean")
    seq = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if seq > 0:
        mid = ends[(lo + hi) // 2]
        first = ks[mid + 1: mid + 1 + seq]
        t_prev_end = ks[mid][0] + ks[mid][1]
        print(f"kernels of one step, in order (us: start, gap after the previous kernel's end, duration):")
        for st, d, n in first:
            print(f"  {(st - first[0][0]) / 1e3:8.1f} {(st - t_prev_end) / 1e3:6.1f} {d / 1e3:7.2f}  {n[:70]}")
            t_prev_end = max(t_prev_end, st + d)


if __name__ == "__main__":
    main()
