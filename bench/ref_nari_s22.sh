#!/bin/bash
# bench/ref_nari_s22.sh - twenty-second session: the original nari-labs/dia code (bench/reference_nari.py; carry
# bench/nari-dia from `sh bench/fetch_nari.sh`) at B = 1, then libdia's dia_generate B = 1 (bench_cuda --generate 1,
# the same sampling parameters and max_tokens 3072) in the same command.
set -u
pip list 2>/dev/null | grep -i -E "^(torch|torchaudio|pydantic|huggingface.hub|transformers|triton) "
timeout ${NARI_TIMEOUT:-330} python3 bench/reference_nari.py bench/nari-dia 1 200 > /tmp/nari.log 2>&1
echo "nari rc=$?"; grep -E "^REF" /tmp/nari.log || tail -25 /tmp/nari.log
. bench/ab_gen.sh # the build, the model, gen()
gen "B=1 libdia" 200 X=1
gen "B=1 libdia" 200 X=1
nvidia-smi --query-gpu=name --format=csv,noheader
