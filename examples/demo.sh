#!/bin/sh
# make demo: synthesize a short two-speaker script to demo.wav.
# Uses the real Dia-1.6B-0626 + DAC when found (DIA_MODEL / DIA_DAC directories, or the Hugging Face
# hub cache: nari-labs/Dia-1.6B-0626 and descript/dac_44khz), else the bundled tiny random model
# (whose "speech" is noise: it only shows the pipeline working).
set -eu
BUILD=${BUILD:-build}
DIA="$BUILD/bin/dia"
hub=${HF_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}
cached() { [ -f "$hub/models--$(echo "$1" | sed 's|/|--|')/refs/main" ]; }
MODEL=${DIA_MODEL:-}
DAC=${DIA_DAC:-}
[ -z "$MODEL" ] && cached nari-labs/Dia-1.6B-0626 && MODEL=nari-labs/Dia-1.6B-0626
[ -z "$DAC" ] && cached descript/dac_44khz && DAC=descript/dac_44khz
if [ -n "$MODEL" ] && [ -n "$DAC" ]; then
  TEXT="[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts and voices. [S1] Wow. Amazing. (laughs) [S2] Try it now."
  EXTRA="--max-tokens 3072"
  echo "demo: using the real model $MODEL with $DAC"
else
  MODEL=tests/fixtures/tiny/dia-hf
  DAC=tests/fixtures/tiny/dac-hf
  TEXT="[S1] Hello from libdia. [S2] Hi! (laughs)"
  EXTRA="--max-tokens 256"
  echo "demo: Dia-1.6B-0626 / dac_44khz not found (set DIA_MODEL and DIA_DAC, or run: $DIA download nari-labs/Dia-1.6B-0626"
  echo "      and $DIA download descript/dac_44khz); using the bundled tiny random-weight model: the audio is noise"
fi
"$DIA" generate --model "$MODEL" --dac "$DAC" --text "$TEXT" $EXTRA --seed 1 --out demo.wav
echo "demo: wrote $(pwd)/demo.wav"
