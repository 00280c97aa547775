# bench/ab_gen.sh - sourced by the one-call scripts (bench/ab_*.sh, bench/ncu_decode_step.sh) on the
# device machine: builds libdia with CUDA and the full-size model (bench_cuda.sh env build model),
# sets B (bench_cuda) and M (the model), then defines
#   gen LABEL STEPS [VAR=VALUE ...]   dia_generate B = 1 (max_tokens 3072, frames W .. W + STEPS; W = $W,
#                                     20 if unset) with those environment variables; prints LABEL frames= steps_per_s=
#   gpu_tests FILTER [VAR=VALUE ...]  the GPU tests (FILTER: cmocka's pattern, "" for all) with those
#                                     environment variables; prints their summary lines (output in
#                                     /tmp/suite.txt); fails unless they passed
#   ab_loop REPS "WINDOWS" SPEC ...   for each first frame W in WINDOWS, REPS rounds of gen over frames W .. W + 200
#                                     of every SPEC in turn (interleaved); a SPEC is "LABEL;VAR=VALUE ..." (no
#                                     variables: X=1; BIN=path runs that bench_cuda instead of $B)
#   ab_whole SPEC ...                 a whole generation (frames 20 .. 3020) of every SPEC in turn
#   build_beside DIR OVERLAY LABEL [JOBS]  this tree (without ab_old/ and build-cuda/) copied to DIR with
#                                     OVERLAY's files laid over it (e.g. ab_old/: an earlier kernel), and its
#                                     bench_cuda built there (DIR/build-cuda/bench/bench_cuda; log DIR.build.log)
PHASES="env build model" bash bench/bench_cuda.sh 2>&1 | grep "build ok\|FAILED\|rror\|MODEL" | head -5
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
B=./build-cuda/bench/bench_cuda M=${MODEL:-/tmp/dia-full}
gen() { local lab=$1 st=$2; shift 2
  timeout 90 env "$@" $B --model "$M" --backend cuda --dtype bf16 --batch 1 --steps "$st" --warmup "${W:-20}" --generate 1 --capacity 3072 2>&1 \
    | grep "timed_frames=${W:-20}\.\." | sed "s/.*timed_frames=\([0-9.]*\).*steps_per_s=\([0-9.]*\).*/$lab frames=\1 steps_per_s=\2/"
}
gpu_tests() { local f=$1; shift
  env "$@" DIA_TEST_CUDA=1 ${f:+DIA_TEST_FILTER=$f} CMOCKA_MESSAGE_OUTPUT=stdout timeout 240 ./build-cuda/tests/test_cuda > /tmp/suite.txt 2>&1
  grep "decode-step kernel\|producer warp group\|PASSED\|FAILED\|SKIPPED  \]\|rror" /tmp/suite.txt | head -20
  grep -q "PASSED  \]" /tmp/suite.txt && ! grep -q "FAILED" /tmp/suite.txt
}
ab_gen1() { local st=$1 lab=${2%%;*} b=$B v a=()
  for v in ${2#*;}; do case $v in BIN=*) b=${v#BIN=} ;; *) a+=("$v") ;; esac; done
  [ ${#a[@]} -gt 0 ] || a=(X=1)
  B=$b gen "$lab" "$st" "${a[@]}"
}
ab_loop() { local reps=$1 wins=$2 s r; shift 2
  for W in $wins; do export W; for ((r = 0; r < reps; r++)); do for s in "$@"; do ab_gen1 200 "$s"; done; done; done
  unset W
}
ab_whole() { local s; for s in "$@"; do ab_gen1 3000 "$s"; done; }
build_beside() { local d=$1 ov=$2 lab=$3 j=${4:-16} cb
  cb=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
  rm -rf "$d" && mkdir -p "$d" && tar --exclude=./ab_old --exclude=./build-cuda -cf - . | tar -xf - -C "$d" && cp -r "$ov"/. "$d"/
  (cd "$d" && make CUDA=1 BUILD=build-cuda DEPS_PREFIX=/tmp/deps "CFLAGS=-I$cb" -j"$j" build-cuda/bench/bench_cuda > "$d.build.log" 2>&1) \
    && echo "$lab build ok" || { echo "$lab build failed"; tail -20 "$d.build.log"; }
}
