/* fuzz_audio.c - libFuzzer target: arbitrary bytes as an audio file (dia_audio_read: libsndfile's formats,
 * the truncated-WAV check, mixing down and resampling to 44.1 kHz). It must return a status, never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dia.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_audio_%d.wav", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
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
