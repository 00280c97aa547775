#!/bin/bash
# bench/bench_ab.sh - the CUDA backend of this tree against an earlier revision's kernels, side by
# side in one device call (the device machine has no git, so the old files travel in the tree):
#
#   bash bench/bench_ab.sh prepare REV        # here: kernels/ and lib/ files that differ from REV -> ab_old/
#   bash bench/bench_ab.sh run                # on the device machine (one `run` call)
#   rm -rf ab_old                             # afterwards (ignored by git: pass carry=["ab_old"] to the run)
#
# `run` builds and tests this tree (bench_cuda.sh phases env build test model vram), builds a copy
# of it with ab_old/ laid over it in /tmp/old (the same bench_cuda.c: only the library differs),
# then times dia_generate for both binaries interleaved (AB_BATCHES, AB_CAPS: max_tokens, 0 = the
# timed frames + 32; AB_REPS repetitions), decode steps at positions 1401..1500 (AB_LONG; AB_REPS
# pairs, alternating which binary runs first) and,
# unless AB_REF=0, the PyTorch reference (static cache + torch.compile) at B = 1 and 64.
set -u
if [ "${1:-}" = prepare ]; then
  rev=${2:?usage: bench_ab.sh prepare REV}
  rm -rf ab_old
  for f in $(git diff --name-only "$rev" -- kernels lib); do
    mkdir -p "ab_old/$(dirname "$f")"
    git show "$rev:$f" > "ab_old/$f" 2>/dev/null || rm -f "ab_old/$f" # (a file new since REV: the old tree lacks it)
  done
  echo "ab_old/: $(find ab_old -type f | wc -l) files of $rev"
  exit 0
fi
[ "${1:-}" = run ] || { sed -n 2,14p "$0"; exit 2; }
[ -d ab_old ] || { echo "bench_ab.sh: no ab_old/ (run 'prepare REV' first)"; exit 2; }
PHASES="env build test model vram" bash bench/bench_cuda.sh 2>&1 \
  | grep -v "^linked\|Writing\|^total\|^drwx\|^-rw\|^  attention\|^  bf16-cache att\|^\[ RUN\|^\[       OK\|libdia error\|^  [a-z]" | tail -30
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
rm -rf /tmp/old && mkdir -p /tmp/old && tar --exclude=./build --exclude=./build-cuda --exclude=./ab_old -cf - . | tar -xf - -C /tmp/old
cp -r ab_old/. /tmp/old/
(cd /tmp/old && make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR" -j"$(nproc)" build-cuda/bench/bench_cuda \
  > /tmp/old_build.log 2>&1) || { echo "old build failed"; tail -20 /tmp/old_build.log; exit 1; }
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
NEW=./build-cuda/bench/bench_cuda OLD=/tmp/old/build-cuda/bench/bench_cuda MODEL=${MODEL:-/tmp/dia-full}
gen() { # label binary B max_tokens
  "$2" --model "$MODEL" --backend cuda --dtype bf16 --batch "$3" --steps 200 --warmup 20 --generate 1 --capacity "$4" 2>&1 \
    | grep "timed_frames=20" | sed "s/.*batch=\([0-9]*\).*max_tokens=\([0-9]*\).*steps_per_s=\([0-9.]*\).*ttff_ms=\([0-9.]*\).*/$1 B=\1 max_tokens=\2 steps_per_s=\3 ttff_ms=\4/"
}
echo "=== dia_generate (frames 20..220), this tree (new) vs ab_old (old), interleaved"
for rep in $(seq "${AB_REPS:-1}"); do
  for cap in ${AB_CAPS:-3072}; do
    for B in ${AB_BATCHES:-1 8 32 64}; do gen new $NEW "$B" "$cap"; gen old $OLD "$B" "$cap"; done
  done
done
echo "=== decode steps at positions 1401..1500 (interleaved, AB_REPS times: single runs differ by ~1.5%)"
for B in ${AB_LONG:-1 64}; do
  for bin in $(for rep in $(seq "${AB_REPS:-1}"); do [ $((rep % 2)) = 1 ] && echo new old || echo old new; done); do
    b=$NEW; [ $bin = old ] && b=$OLD
    echo -n "$bin "; "$b" --model "$MODEL" --backend cuda --dtype bf16 --batch "$B" --steps 100 --warmup 1400 2>&1 \
      | grep RESULT | sed 's/.*batch=\([0-9]*\).*steps_per_s=\([0-9.]*\).*/B=\1 steps_per_s=\2/'
  done
done
if [ "${AB_REF:-1}" != 0 ]; then
  PHASES="ref" REF_MODES="static" REF_BATCHES="1 64" REF_STEPS=200 REF_TIMEOUT=200 bash bench/bench_cuda.sh 2>&1 | grep -v "^linked"
fi
