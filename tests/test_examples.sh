#!/bin/sh
# test_examples.sh - run the embedding examples (built by `make examples` into $BUILD/examples) on the
# tiny fixtures and check what they write. Run from the repository root via `make test-examples`.
set -u
BUILD=${BUILD:-build}
E=$BUILD/examples
FIX=tests/fixtures/tiny
M=$FIX/dia-hf
D=$FIX/dac-hf
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dia-examples.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# samples in a 16-bit PCM mono WAV written by dia_audio_write (data chunk size / 2), or -1
wav_samples() {
  [ "$(head -c 4 "$1" 2>/dev/null)" = RIFF ] || { echo -1; return; }
  size=$(wc -c < "$1")
  echo $(((size - 44) / 2))
}
# run NAME CMD...: run an example, keep its output in $tmp/NAME.out
run() {
  name=$1; shift
  if "$@" > "$tmp/$name.out" 2>&1; then return 0; fi
  bad "$name exited with $?:"; sed 's/^/       /' "$tmp/$name.out"; return 1
}
HOP=512

# simple: one text -> WAV whose length is frames * hop
if run simple "$E/simple" $M $D "[S1] Hello from a tiny model." "$tmp/simple.wav" 3; then
  frames=$(sed -n 's/^generated \([0-9]*\) frames$/\1/p' "$tmp/simple.out")
  n=$(wav_samples "$tmp/simple.wav")
  if [ -n "$frames" ] && [ "$n" -eq $((frames * HOP)) ]; then ok "simple: $frames frames -> $n samples"
  else bad "simple: frames '$frames' but the WAV has $n samples"; cat "$tmp/simple.out"; fi
  run simple2 "$E/simple" $M $D "[S1] Hello from a tiny model." "$tmp/simple2.wav" 3 &&
    if cmp -s "$tmp/simple.wav" "$tmp/simple2.wav"; then ok "simple: the same seed gives the same WAV"
    else bad "simple: two runs with seed 3 differ"; fi
fi
if "$E/simple" $M $D "x" > "$tmp/usage.out" 2>&1; then bad "simple accepted too few arguments"
else ok "simple: usage error with too few arguments"; fi
if "$E/simple" $FIX/no-such-model $D "[S1] x" "$tmp/x.wav" > "$tmp/err.out" 2>&1; then bad "simple loaded a missing model"
elif grep -q 'dia_model_load failed' "$tmp/err.out"; then ok "simple: a missing model is reported ($(head -1 "$tmp/err.out"))"
else bad "simple: unexpected error output:"; sed 's/^/       /' "$tmp/err.out"; fi

# batch: two texts greedy; every item a WAV; the texts[0] item equals a batch-of-one run
if DIA_TEMPERATURE=0 DIA_THREADS=2 run batch "$E/batch" $M $D "$tmp/b" "[S1] First item." "[S2] Second, longer item of the batch." &&
   DIA_TEMPERATURE=0 DIA_THREADS=2 run batch1 "$E/batch" $M $D "$tmp/one" "[S2] Second, longer item of the batch."; then
  if [ "$(wav_samples "$tmp/b0.wav")" -gt 0 ] && [ "$(wav_samples "$tmp/b1.wav")" -gt 0 ]; then ok "batch: two WAVs written"
  else bad "batch: missing or empty WAVs"; cat "$tmp/batch.out"; fi
  if cmp -s "$tmp/b1.wav" "$tmp/one0.wav"; then ok "batch: item 1 of a batch of 2 equals the same text alone"
  else bad "batch: item 1 differs from the same text generated alone"; fi
fi

# stream: chunked decoding through the frame callback, then cancellation after 20 frames
if run stream "$E/stream" $M $D "[S1] Streaming from a tiny model." "$tmp/stream.wav"; then
  frames=$(sed -n 's/^\([0-9]*\) frames in .*/\1/p' "$tmp/stream.out")
  n=$(wav_samples "$tmp/stream.wav")
  chunks=$(grep -c '^chunk ' "$tmp/stream.out")
  if [ -n "$frames" ] && [ "$n" -eq $((frames * HOP)) ] && [ "$chunks" -ge 1 ]; then ok "stream: $frames frames in $chunks chunks -> $n samples"
  else bad "stream: frames '$frames', $chunks chunks, $n samples"; cat "$tmp/stream.out"; fi
fi
if run stream_cancel "$E/stream" $M $D "[S1] Streaming from a tiny model." "$tmp/prompt.wav" 20; then
  if grep -q '^cancelled after 20 frames' "$tmp/stream_cancel.out" && [ "$(wav_samples "$tmp/prompt.wav")" -eq $((20 * HOP)) ]; then
    ok "stream: cancelled by the callback after 20 frames, 20 frames of audio kept"
  else bad "stream: cancellation output unexpected:"; sed 's/^/       /' "$tmp/stream_cancel.out"; fi
fi

# voice_clone: the 20-frame streamed WAV as the prompt
if [ -f "$tmp/prompt.wav" ] && run voice_clone "$E/voice_clone" $M $D "$tmp/prompt.wav" "[S1] Streaming from a tiny model." "[S2] And now the answer." "$tmp/clone.wav"; then
  if grep -q '^prompt: 10240 samples -> 20 frames' "$tmp/voice_clone.out" && [ "$(wav_samples "$tmp/clone.wav")" -ge 0 ]; then
    ok "voice_clone: $(tr '\n' ' ' < "$tmp/voice_clone.out")"
  else bad "voice_clone output unexpected:"; sed 's/^/       /' "$tmp/voice_clone.out"; fi
fi

if [ $fails -eq 0 ]; then echo "EXAMPLE CHECKS PASSED"; else echo "EXAMPLE CHECKS FAILED ($fails)"; fi
[ $fails -eq 0 ]
