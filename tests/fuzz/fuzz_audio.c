/* fuzz_audio.c - libFuzzer target: arbitrary bytes as an audio file (dia_audio_read: libsndfile's formats,
 * the truncated-WAV check, mixing down and resampling to 44.1 kHz). It must return a status, never crash. */
#include "dia.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (!fuzz_file(data, size, "audio", "wav", path, sizeof path)) return 0;
    float *audio = NULL;
    size_t n = 0;
    if (dia_audio_read(path, 44100, &audio, &n) == DIA_OK) {
        volatile float sink = 0;
        for (size_t i = 0; i < n; i++) sink += audio[i]; /* every sample inside the buffer */
        free(audio);
    }
    unlink(path);
    return 0;
}
