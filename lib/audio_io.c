/* audio_io.c - dia_audio_read / dia_audio_write: audio files through libsndfile (WAV, FLAC, OGG
 * Vorbis, ...), mixed down to mono and resampled with libsamplerate (SRC_SINC_BEST_QUALITY). */
#include <ctype.h>
#include <errno.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define AUDIO_MAX_RATE 1000000
#define AUDIO_BLOCK_FRAMES 65536

/* A WAV file whose data chunk claims more bytes than the file holds: libsndfile then quietly reads
 * what is there, so the header is checked here. Returns 1 if `path` is such a file. */
static int wav_truncated(const char *path, sf_count_t *claimed, long *have) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[12];
    int truncated = 0;
    if (fread(h, 1, 12, f) == 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) {
        unsigned char ck[8];
        while (fread(ck, 1, 8, f) == 8) {
            const unsigned long len = (unsigned long)ck[4] | (unsigned long)ck[5] << 8 | (unsigned long)ck[6] << 16 |
                                      (unsigned long)ck[7] << 24;
            if (!memcmp(ck, "data", 4)) {
                const long pos = ftell(f);
                if (fseek(f, 0, SEEK_END) == 0) {
                    const long end = ftell(f);
                    if (pos >= 0 && end >= pos && (unsigned long)(end - pos) < len && len != 0xffffffffUL) {
                        truncated = 1;
                        *claimed = (sf_count_t)len;
                        *have = end - pos;
                    }
                }
                break;
            }
            if (fseek(f, (long)(len + (len & 1)), SEEK_CUR) != 0) break;
        }
    }
    fclose(f);
    return truncated;
}

DIA_API dia_status dia_audio_read(const char *path, int sample_rate, float **audio, size_t *samples) {
    dia_clear_error();
    if (audio) *audio = NULL;
    if (samples) *samples = 0;
    if (!path || !*path || !audio || !samples)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_read: NULL argument or empty path");
    if (sample_rate < 1 || sample_rate > AUDIO_MAX_RATE)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_read: sample rate %d outside [1, %d]", sample_rate,
                        AUDIO_MAX_RATE);
    FILE *probe = fopen(path, "rb");
    if (!probe) return dia_fail(DIA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    const int is_empty = fgetc(probe) == EOF;
    fclose(probe);
    if (is_empty) return dia_fail(DIA_ERR_BAD_AUDIO, "%s: empty file (0 bytes)", path);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf) return dia_fail(DIA_ERR_BAD_AUDIO, "%s: not a readable audio file (%s)", path, sf_strerror(NULL));
    sf_count_t claimed = 0;
    long have = 0;
    if (info.frames <= 0 || info.channels < 1 || info.samplerate < 1) {
        sf_close(sf);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: empty audio file (%lld frames, %d channels)", path,
                        (long long)info.frames, info.channels);
    }
    if ((info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV && wav_truncated(path, &claimed, &have)) {
        sf_close(sf);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: truncated WAV file (data chunk of %lld bytes, %ld present)", path,
                        (long long)claimed, have);
    }
    if (info.frames > ((sf_count_t)1 << 31)) {
        sf_close(sf);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: %lld frames is too long", path, (long long)info.frames);
    }
    const sf_count_t nf = info.frames;
    const int ch = info.channels;
    float *mono = malloc((size_t)nf * sizeof(float));                         /* [nf] */
    float *block = malloc((size_t)AUDIO_BLOCK_FRAMES * (size_t)ch * sizeof(float)); /* [block, ch] */
    if (!mono || !block) {
        free(mono);
        free(block);
        sf_close(sf);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    }
    sf_count_t got = 0;
    while (got < nf) {
        const sf_count_t want = nf - got < AUDIO_BLOCK_FRAMES ? nf - got : AUDIO_BLOCK_FRAMES;
        const sf_count_t r = sf_readf_float(sf, block, want);
        if (r <= 0) break;
        for (sf_count_t i = 0; i < r; i++) {
            double s = 0;
            for (int c = 0; c < ch; c++) s += block[i * ch + c];
            mono[got + i] = (float)(s / ch);
        }
        got += r;
    }
    const int err = sf_error(sf);
    char errmsg[256];
    snprintf(errmsg, sizeof errmsg, "%s", sf_strerror(sf));
    sf_close(sf);
    free(block);
    if (got < nf || err != SF_ERR_NO_ERROR) {
        free(mono);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: truncated or corrupt audio: read %lld of %lld frames (%s)", path,
                        (long long)got, (long long)nf, err != SF_ERR_NO_ERROR ? errmsg : "the file ends early");
    }
    for (sf_count_t i = 0; i < nf; i++)
        if (!(mono[i] == mono[i]) || mono[i] > 1e30f || mono[i] < -1e30f) {
            free(mono);
            return dia_fail(DIA_ERR_BAD_AUDIO, "%s: sample %lld is not a finite number", path, (long long)i);
        }
    if (info.samplerate == sample_rate) {
        *audio = mono;
        *samples = (size_t)nf;
        return DIA_OK;
    }
    /* resample: the output holds round(nf * ratio) samples */
    const double ratio = (double)sample_rate / (double)info.samplerate;
    const long out_n = (long)((double)nf * ratio + 0.5);
    if (out_n < 1) {
        free(mono);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: %lld frames at %d Hz is empty at %d Hz", path, (long long)nf,
                        info.samplerate, sample_rate);
    }
    float *res = calloc((size_t)out_n + 16, sizeof(float)); /* [out_n] (+ slack for the converter) */
    if (!res) {
        free(mono);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory resampling %s", path);
    }
    SRC_DATA d;
    memset(&d, 0, sizeof d);
    d.data_in = mono;
    d.input_frames = (long)nf;
    d.data_out = res;
    d.output_frames = out_n;
    d.end_of_input = 1;
    d.src_ratio = ratio;
    const int rc = src_simple(&d, SRC_SINC_BEST_QUALITY, 1);
    free(mono);
    if (rc != 0) {
        free(res);
        return dia_fail(DIA_ERR_BAD_AUDIO, "%s: resampling %d Hz -> %d Hz failed: %s", path, info.samplerate,
                        sample_rate, src_strerror(rc));
    }
    /* output_frames_gen can fall a sample or so short of round(nf * ratio): the tail stays zero */
    *audio = res;
    *samples = (size_t)out_n;
    return DIA_OK;
}

/* The extension of `path` (after the last '.' of the last component), lower-cased into buf. */
static const char *extension(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot || !dot[1]) return "";
    size_t i = 0;
    for (dot++; *dot && i + 1 < cap; dot++) buf[i++] = (char)tolower((unsigned char)*dot);
    buf[i] = 0;
    return buf;
}

DIA_API dia_status dia_audio_write(const char *path, const float *audio, size_t samples, int sample_rate,
                                   unsigned flags) {
    dia_clear_error();
    if (!path || !*path || !audio || samples == 0)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: NULL argument, empty path or no samples");
    if (sample_rate < 1 || sample_rate > AUDIO_MAX_RATE)
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: sample rate %d outside [1, %d]", sample_rate,
                        AUDIO_MAX_RATE);
    if (flags & ~DIA_AUDIO_FLOAT) return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: unknown flags 0x%x", flags);
    char eb[16];
    const char *ext = extension(path, eb, sizeof eb);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = sample_rate;
    info.channels = 1;
    if (!strcmp(ext, "wav")) info.format = SF_FORMAT_WAV | ((flags & DIA_AUDIO_FLOAT) ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16);
    else if (!strcmp(ext, "flac")) info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    else if (!strcmp(ext, "ogg") || !strcmp(ext, "oga")) info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    else
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: %s: unknown extension \"%s\" (expected .wav, .flac or .ogg)",
                        path, ext);
    if ((flags & DIA_AUDIO_FLOAT) && strcmp(ext, "wav"))
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: DIA_AUDIO_FLOAT is only for .wav (got %s)", path);
    if (!sf_format_check(&info))
        return dia_fail(DIA_ERR_INVALID_ARG, "dia_audio_write: %s: libsndfile cannot write this format at %d Hz", path,
                        sample_rate);
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf) return dia_fail(DIA_ERR_IO, "cannot create %s: %s", path, sf_strerror(NULL));
    if (!(flags & DIA_AUDIO_FLOAT)) sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE); /* clip, don't wrap */
    const sf_count_t wrote = sf_writef_float(sf, audio, (sf_count_t)samples);
    char errmsg[256];
    snprintf(errmsg, sizeof errmsg, "%s", sf_strerror(sf));
    const int rc = sf_close(sf);
    if (wrote != (sf_count_t)samples || rc != 0)
        return dia_fail(DIA_ERR_IO, "writing %s failed after %lld of %zu samples: %s", path, (long long)wrote, samples,
                        errmsg);
    return DIA_OK;
}
