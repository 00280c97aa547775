#!/bin/bash
# bench/bench_cuda.sh - build libdia with CUDA on the device machine, run the GPU tests, write a
# full-size random Dia-1.6B model and time decode steps of libdia and of the PyTorch reference.
#
#   PHASES="env build test model lib ref" BATCHES="1 8 32 64" STEPS=200 bash bench/bench_cuda.sh
#   PHASES="build test model vram lib long" CACHE_MODES="bf16 f32" BATCHES="1 64" bash bench/bench_cuda.sh
#
# KNOB_GENERATE=1: the knobs phase times dia_generate (device sampler, codes to the host) instead of
# single decoder steps (which download every row's logits); KNOB_CAPACITY=3072: with max_tokens 3072
# (the cache of a default generation; cancelled after the timed frames).
# Phases: env build test model ops cmp ncu trace vram lib long dac knobs step stepopt stepvar stepws sampling nograph ref
# (step: the persistent decode-step kernel against the default at B=1, and its phase profile; stepopt: the
# kernel with each DIA_CUDA_DECODE_STEP_OPT[:DEBUG] of STEP_OPTS, STEP_PROFILE=1 adds its profile, WARMUP=1400
# STEPS=100 times positions 1401..1500; stepvar: compile-time variants, STEP_DEFINES; dac: DAC_NCU=1 adds a
# per-kernel ncu breakdown, DAC_OPS=1 each bf16 conv of an 861-frame (10 s) segment, DAC_REF=1 PyTorch's decode of the
# same codes, DAC_CPU=1 a CPU line). CACHE_MODES (vram, lib,
# long): bf16 = the attention caches the backend picks (bf16 with bf16 weights), f32 =
# DIA_CUDA_CACHE_F32=1 (f32 caches, the behaviour before bf16 caches).
# The machine has no libcjson/libcmocka/libsndfile/libsamplerate: the Debian packages in
# kernels/cuda/debs are unpacked into /tmp/deps and the build points at them (DEPS_PREFIX).
set -u
PHASES=${PHASES:-"env build test model lib ref"}
BATCHES=${BATCHES:-"1 8 32 64"}
STEPS=${STEPS:-200}
WARMUP=${WARMUP:-20}
MODEL=${MODEL:-/tmp/dia-full}
REF_MODES=${REF_MODES:-"eager static"}
REF_BATCHES=${REF_BATCHES:-"1"}
REF_STEPS=${REF_STEPS:-200}
JOBS=$(nproc)
has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }

mkdir -p /tmp/deps
for f in kernels/cuda/debs/*.deb; do dpkg -x "$f" /tmp/deps; done
# link-time names (libX.so) for libraries present only as runtime packages (libX.so.N)
for l in crypto curl zstd openblas gomp; do
  if ! ldconfig -p | grep -q "lib$l.so "; then
    so=$(ldconfig -p | grep -o "/[^ ]*lib$l.so.[0-9]*$" | head -1)
    [ -n "$so" ] && ln -sf "$so" /tmp/deps/usr/lib/x86_64-linux-gnu/lib$l.so && echo "linked lib$l.so -> $so"
  fi
done
CBLAS_DIR=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
# the build keeps -Werror (gcc 13 on the device machine); if it fails, the build phase prints the
# errors, lists every warning of a -Wno-error build and goes on with that build
MK=(make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR")
# attention caches: "bf16" = the backend's choice (bf16 with bf16 weights), "f32" = DIA_CUDA_CACHE_F32=1
CACHE_MODES=${CACHE_MODES:-bf16}
cache_env() { if [ "$1" = f32 ]; then echo DIA_CUDA_CACHE_F32=1; else echo DIA_CUDA_CACHE_F32=0; fi; }

ncu_summary() {
  python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10]
hdr = rows[0]; ki = hdr.index("Kernel Name"); vi = hdr.index("Metric Value"); ui = hdr.index("Metric Unit")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    name = r[ki].split("(")[0].split("<")[0][:40] + ("<" + r[ki].split("<")[1].split(">")[0][:20] + ">" if "<" in r[ki] else "")
    u = r[ui].strip().lower()
    v = float(r[vi].replace(",", "")) * {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}.get(u, float("nan"))
    tot[name] += v; cnt[name] += 1
allt = sum(tot.values()); n = sum(cnt.values())
print(f"kernels {n}, GPU time {allt:.0f} us ({allt / n:.2f} us per kernel on average)")
for k, v in sorted(tot.items(), key=lambda x: -x[1]):
    print(f"  {k:64s} n={cnt[k]:4d} total={v:9.1f} us  mean={v / cnt[k]:7.2f} us")
PY
}

if has env; then
  echo "=== env"; date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv
  nvcc --version | tail -1; gcc --version | head -1; echo "cblas.h in $CBLAS_DIR"
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
fi
if has build; then
  echo "=== build"
  TARGETS=(lib build-cuda/tests/test_cuda build-cuda/bench/bench_cuda build-cuda/bench/bench_cuda_ops build-cuda/bench/bench_dac_cuda build-cuda/bin/dia)
  if "${MK[@]}" -j"$JOBS" "${TARGETS[@]}" > /tmp/build.log 2>&1; then
    echo "build ok (-Werror); warnings: $(grep -c 'warning:' /tmp/build.log)"
    grep -B2 -A3 'warning:' /tmp/build.log | head -40
  else
    echo "build FAILED with -Werror:"; grep -B2 -A6 'error' /tmp/build.log | head -60
    MK=(make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$CBLAS_DIR -Wno-error")
    "${MK[@]}" -k -j"$JOBS" "${TARGETS[@]}" > /tmp/build2.log 2>&1 || { tail -40 /tmp/build2.log; exit 1; }
    echo "=== all warnings of the -Wno-error build"; grep -A4 'warning:' /tmp/build2.log | head -80
  fi
fi
if has test; then
  echo "=== make test-cuda"
  "${MK[@]}" test-cuda 2>&1 | grep -v "^make\|^cc \|nvcc\|^    -Wl\|^rm -f\|^ln -sf\|ar rcs"
fi
if has model; then
  echo "=== full-size random model"
  [ -f "$MODEL/config.json" ] || python3 bench/make_full_model.py "$MODEL"
  ls -la "$MODEL"
fi
if has ops; then
  echo "=== single ops at decode shapes"
  for R in ${OPS_ROWS:-2}; do ./build-cuda/bench/bench_cuda_ops --rows "$R" --kv 1500 | grep -v "^libdia info"; done
  # OPS_CONV_LINEAR=1: the projections at 128 rows as cuBLAS (matmul) vs conv_bf16 with one tap
  if [ -n "${OPS_CONV_LINEAR:-}" ]; then ./build-cuda/bench/bench_cuda_ops --conv-linear 1 --rows 128 | grep -v "^libdia info"; fi
fi
if has cmp; then
  echo "=== full-size cross-check on a smooth random model (init 0.002): CPU vs CUDA logits_sum after 6 positions"
  [ -f /tmp/dia-smooth/config.json ] || python3 bench/make_full_model.py /tmp/dia-smooth 0.002 | grep MODEL
  for cfg in "cpu auto" "cuda f32" "cuda bf16"; do
    set -- $cfg
    ./build-cuda/bench/bench_cuda --model /tmp/dia-smooth --backend $1 --dtype $2 --batch 1 --steps 3 --warmup 2 2>&1 \
      | grep -o "backend=[a-z]* dtype=[a-z0-9]*\|logits_sum=.*" | tr '\n' ' '; echo
  done
fi
if has ncu; then
  echo "=== ncu: GPU time per kernel over decode steps (graphs off)"
  DIA_CUDA_GRAPHS=0 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip ${NCU_SKIP:-2500} --launch-count ${NCU_COUNT:-700} \
    ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 --batch ${NCU_B:-1} --steps 12 --warmup 2 \
    > /tmp/ncu.csv 2>/tmp/ncu.err; tail -3 /tmp/ncu.err
  ncu_summary
fi
if has trace; then
  # TRACE_B batches, TRACE_KNOBS: VAR=value[,VAR=value] sets; dia_generate with a CUPTI kernel trace
  # (bench/cupti_trace.cc, preloaded), per-step kernel times inside the replayed graphs
  CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
  CUPTI_LIB=$(dirname "$(find "$CUDA_HOME/" -name 'libcupti.so' 2>/dev/null | head -1)")
  CUPTI_INC=$(dirname "$(find "$CUDA_HOME/" -name 'cupti.h' 2>/dev/null | head -1)")
  g++ -O2 -shared -fPIC -I"$CUPTI_INC" bench/cupti_trace.cc -o /tmp/libcupti_trace.so -L"$CUPTI_LIB" -lcupti \
    -Wl,-rpath,"$CUPTI_LIB" || echo "cupti_trace: build failed"
  for B in ${TRACE_B:-1 64}; do
    for k in ${TRACE_KNOBS:-DIA_CUDA_PDL=1}; do
      echo "=== kernel trace: dia_generate B=$B knobs $k"
      env ${k//,/ } CUPTI_TRACE_OUT=/tmp/trace.csv LD_PRELOAD=/tmp/libcupti_trace.so ./build-cuda/bench/bench_cuda \
        --model "$MODEL" --backend cuda --dtype bf16 --batch "$B" --steps ${TRACE_STEPS:-60} --warmup 20 --generate 1 --capacity "${TRACE_CAPACITY:-0}" 2>&1 \
        | grep "^RESULT\|cupti"
      python3 bench/trace_steps.py /tmp/trace.csv k_sample ${TRACE_SEQ:-0} | head -${TRACE_LINES:-40}
    done
  done
fi
if has vram; then
  echo "=== device memory at B=1 with a full 3072-position cache (cudaMemGetInfo: total - free)"
  for cm in $CACHE_MODES; do
    echo "cache $cm:"; env $(cache_env $cm) ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 \
      --batch 1 --steps 50 --warmup 10 --capacity 3072 2>&1 | grep -v "^libdia info"
  done
fi
if has lib; then
  echo "=== libdia decode steps (cuda)"
  for dt in ${DTYPES:-bf16}; do
    for B in $BATCHES; do
      for cm in $CACHE_MODES; do
        echo "cache $cm:"; env $(cache_env $cm) ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda \
          --dtype "$dt" --batch "$B" --steps "$STEPS" --warmup "$WARMUP" 2>&1 | grep -v "^libdia info"
      done
    done
  done
fi
if has long; then
  echo "=== libdia decode steps at a long context (positions 1401..1500; the mean position of a 3072-step generation is ~1536)"
  for B in ${LONG_BATCHES:-1 64}; do
    for cm in $CACHE_MODES; do
      echo "cache $cm:"; env $(cache_env $cm) ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 \
        --batch "$B" --steps 100 --warmup 1400 2>&1 | grep -v "^libdia info"
    done
  done
fi
if has dac; then
  echo "=== DAC decode (random descript/dac_44khz-architecture weights): f32, f32 with TF32 GEMMs, bf16 (conv_bf16)"
  [ -f /tmp/dac-full/config.json ] || python3 bench/make_full_dac.py /tmp/dac-full | grep DAC
  ./build-cuda/bench/bench_dac_cuda /tmp/dac-full cuda 10 f32 2>&1 | grep -v "^libdia info"
  echo "(DIA_CUDA_TF32=1:)"; DIA_CUDA_TF32=1 ./build-cuda/bench/bench_dac_cuda /tmp/dac-full cuda 10 f32 2>&1 | grep -v "^libdia info"
  ./build-cuda/bench/bench_dac_cuda /tmp/dac-full cuda 10 bf16 2>&1 | grep -v "^libdia info"
  if [ -n "${DAC_CPU:-}" ]; then ./build-cuda/bench/bench_dac_cuda /tmp/dac-full cpu 1 f32 2>&1 | grep -v "^libdia info"; fi
  if [ -n "${DAC_REF:-}" ]; then timeout 300 python3 bench/reference_dac_pytorch.py /tmp/dac-full 10 2>&1 | grep -E "^REF_DAC|Error"; fi
  if [ -n "${DAC_OPS:-}" ]; then ./build-cuda/bench/bench_cuda_ops --dac 861 --reps 20 | grep -v "^libdia info"; fi
  if [ -n "${DAC_NCU:-}" ]; then
    echo "=== ncu: GPU time per kernel of bf16 DAC decodes of 10 s (4 decodes: 1 cold + 3 timed)"
    DAC_NO_COMPARE=1 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv \
      ./build-cuda/bench/bench_dac_cuda /tmp/dac-full cuda 10 bf16 > /tmp/ncu.csv 2>/tmp/ncu.err; tail -3 /tmp/ncu.err
    ncu_summary
  fi
fi
if has knobs; then
  echo "=== libdia decode steps under backend knobs (KNOBS: space-separated VAR=value[,VAR=value] sets)"
  for B in ${KNOB_BATCHES:-1}; do
    for k in ${KNOBS:-DIA_CUDA_PDL=1 DIA_CUDA_PDL=0}; do
      echo "knobs $k:"; env ${k//,/ } ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 \
        --batch "$B" --steps "$STEPS" --warmup "$WARMUP" --generate "${KNOB_GENERATE:-0}" --capacity "${KNOB_CAPACITY:-0}" 2>&1 | grep -v "^libdia info"
    done
  done
fi
B1S=(./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 --batch 1 --generate 1 --capacity 3072)
# steps/s of one B=1 run at positions WARMUP+1..WARMUP+STEPS with the environment VAR=value ... of $@
b1_rate() { env "$@" "${B1S[@]}" --steps "$STEPS" --warmup "$WARMUP" 2>&1 | grep "timed_frames=$WARMUP\." | grep -o "steps_per_s=[0-9.]*"; }
# block 0's phase profile over positions 1..150 ($@ must set DIA_CUDA_DECODE_STEP_DEBUG with bit 8)
b1_profile() {
  env "$@" "${B1S[@]}" --steps 150 --warmup 0 --verbose 1 2>&1 | grep -o "decode-step profile.*" | tail -1 \
    | sed 's/decode-step profile, block 0, us per layer/  prof/'
}
# The decode-step kernel (B=1, dia_generate, capacity 3072) against the op-by-op path: $1 a list of
# DIA_CUDA_DECODE_STEP_OPT[:DEBUG] (DEBUG 1/2/3: timing switches, wrong results); $2 non-empty: each
# one's block-0 phase profile too. WARMUP / STEPS pick the timed positions.
step_opts() {
  echo "op by op: $(b1_rate DIA_CUDA_DECODE_STEP=0)"
  for spec in $1; do
    local o=${spec%%:*} d=0; case $spec in *:*) d=${spec#*:};; esac
    echo "OPT=$o DEBUG=$d: $(b1_rate DIA_CUDA_DECODE_STEP=1 DIA_CUDA_DECODE_STEP_OPT=$o DIA_CUDA_DECODE_STEP_DEBUG=$d)"
    if [ -n "$2" ]; then b1_profile DIA_CUDA_DECODE_STEP=1 DIA_CUDA_DECODE_STEP_OPT=$o DIA_CUDA_DECODE_STEP_DEBUG=$((d | 8)); fi
  done
}
if has step; then
  echo "=== the persistent decode-step kernel vs the default path (B=1), twice; then block 0's phase profile"
  step_opts 7 ""
  step_opts 7 1
fi
if has stepopt; then
  echo "=== the decode-step kernel's experiments (STEP_OPTS=\"${STEP_OPTS:-7}\"), STEP_PROFILE=${STEP_PROFILE:-}"
  step_opts "${STEP_OPTS:-7}" "${STEP_PROFILE:-}"
fi
if has stepvar; then
  # compile-time variants of the decode-step kernel: STEP_DEFINES="DS_STAGES=2 DS_STAGES=4" rebuilds
  # cuda_decode_step.cu with each -D and measures it like 'stepopt'; the default build is restored
  NVF="-O3 -std=c++17 -Xcompiler -fPIC,-fvisibility=hidden -Iinclude -Ilib"
  for v in ${STEP_DEFINES:-DS_STAGES=3}; do
    touch kernels/cuda/cuda_decode_step.cu
    "${MK[@]}" NVCCFLAGS="$NVF -D$v" build-cuda/bench/bench_cuda > /tmp/build_v.log 2>&1 || { tail -20 /tmp/build_v.log; continue; }
    echo "=== -D$v"
    PHASES=stepopt bash "$0" 2>&1 | grep -E "^(OPT|op by op|  prof)"
  done
  touch kernels/cuda/cuda_decode_step.cu; "${MK[@]}" build-cuda/bench/bench_cuda > /tmp/build_v.log 2>&1
fi
if has stepws; then
  # the decode-step kernel with its weight stream in a producer warp group (DIA_CUDA_DECODE_STEP_WS=1)
  # (the default on an H100) against the 8-warp kernel and op by op: STEP_WS="0 5:1 6:3 4:2" (0: the
  # 8-warp kernel, DIA_CUDA_DECODE_STEP_WS=0; S:F: the producer warp group with S ring stages, F of
  # them in flight); STEP_PROFILE=1 adds block 0's profile
  echo "=== the decode-step kernel's weight stream (STEP_WS=\"${STEP_WS:-0 6:3}\"), positions $((WARMUP + 1))..$((WARMUP + STEPS))"
  echo "op by op: $(b1_rate DIA_CUDA_DECODE_STEP=0)"
  for spec in ${STEP_WS:-0 6:3}; do
    ws=(DIA_CUDA_DECODE_STEP_WS=0)
    case $spec in *:*) ws=(DIA_CUDA_DECODE_STEP_WS=1 DIA_CUDA_DECODE_STEP_STAGES=${spec%%:*} DIA_CUDA_DECODE_STEP_INFLIGHT=${spec#*:});; esac
    echo "WS $spec: $(b1_rate "${ws[@]}")"
    if [ -n "${STEP_PROFILE:-}" ]; then b1_profile "${ws[@]}" DIA_CUDA_DECODE_STEP_DEBUG=8; fi
  done
fi
if has sampling; then
  echo "=== dia generate end to end (device vs host sampler), MAX_TOKENS=${MAX_TOKENS:-400}"
  BATCHES="${SAMPLING_BATCHES:-1 64}" bash bench/bench_sampling.sh
fi
if has nograph; then
  echo "=== libdia decode steps (cuda), CUDA graphs off"
  for B in $BATCHES; do
    DIA_CUDA_GRAPHS=0 ./build-cuda/bench/bench_cuda --model "$MODEL" --backend cuda --dtype bf16 --batch "$B" \
      --steps "$STEPS" --warmup "$WARMUP" 2>&1 | grep -v "^libdia info"
  done
fi
if has ref; then
  echo "=== PyTorch reference (transformers generate, greedy + CFG)"
  for mode in $REF_MODES; do
    for B in $REF_BATCHES; do
      timeout ${REF_TIMEOUT:-300} python3 bench/reference_pytorch.py "$MODEL" "$mode" "$B" "$REF_STEPS" 2>&1 \
        | grep -E "^REF|Error|error" | tail -3
    done
  done
fi
