/*
 * voice_clone.c - continue a recording in the same voice (audio prompt).
 *
 *   cc voice_clone.c $(pkg-config --cflags --libs dia) -o voice_clone
 *   ./voice_clone MODEL_DIR DAC_DIR prompt.wav "[S1] transcript of prompt.wav" "[S1] new text." out.wav
 *
 * The prompt audio (any format libsndfile reads, any rate, any channel count) is resampled to
 * 44.1 kHz mono and encoded to DAC codes; the model is given the prompt's transcript followed by
 * the new text and continues the dialogue after the prompt's codes. The output holds only the new
 * audio (the prompt is not repeated). Uses only <dia.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dia.h>

static int fail(const char *what, dia_status st) {
    fprintf(stderr, "voice_clone: %s failed: %s (%s)\n", what, dia_status_string(st), dia_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s MODEL_DIR DAC_DIR PROMPT_AUDIO PROMPT_TRANSCRIPT TEXT OUT.wav\n", argv[0]);
        return 2;
    }
    int rc = 1;
    dia_model *model = NULL;
    dia_dac *dac = NULL;
    dia_gen_params *params = NULL;
    dia_codes *codes = NULL;
    float *prompt_audio = NULL, *audio = NULL;
    int32_t *prompt = NULL;
    char *text = NULL;
    size_t prompt_samples = 0, samples = 0;
    int prompt_frames = 0;
    dia_status st;

    if ((st = dia_model_load(argv[1], NULL, &model)) != DIA_OK) { rc = fail("dia_model_load", st); goto done; }
    if ((st = dia_dac_load(argv[2], NULL, &dac)) != DIA_OK) { rc = fail("dia_dac_load", st); goto done; }

    /* 1. prompt audio -> 44.1 kHz mono -> DAC codes [frames, 9] */
    if ((st = dia_audio_read(argv[3], 44100, &prompt_audio, &prompt_samples)) != DIA_OK) { rc = fail("dia_audio_read", st); goto done; }
    if ((st = dia_dac_encode(dac, prompt_audio, prompt_samples, &prompt, &prompt_frames)) != DIA_OK) {
        rc = fail("dia_dac_encode", st);
        goto done;
    }
    printf("prompt: %zu samples -> %d frames\n", prompt_samples, prompt_frames);

    /* 2. transcript of the prompt, then the new text */
    size_t n = strlen(argv[4]) + 1 + strlen(argv[5]) + 1;
    if (!(text = malloc(n))) { fprintf(stderr, "voice_clone: out of memory\n"); goto done; }
    snprintf(text, n, "%s %s", argv[4], argv[5]);

    /* 3. generate after the prompt; max_tokens counts the prompt's frames too */
    int64_t max_frames = 0;
    if ((st = dia_model_info(model, "max_frames", &max_frames)) != DIA_OK) { rc = fail("dia_model_info", st); goto done; }
    if ((st = dia_gen_params_new(&params)) != DIA_OK) { rc = fail("dia_gen_params_new", st); goto done; }
    if (max_frames < 3072 && (st = dia_gen_params_set(params, "max_tokens", (double)max_frames)) != DIA_OK) {
        rc = fail("max_tokens", st);
        goto done;
    }
    const char *texts[1] = {text};
    const int32_t *prompts[1] = {prompt};
    int frames_in[1] = {prompt_frames};
    st = dia_generate(model, params, 1, texts, prompts, frames_in, NULL, NULL, &codes);
    if (st != DIA_OK) { rc = fail("dia_generate", st); goto done; }
    int frames = dia_codes_frames(codes, 0);

    /* 4. new codes -> audio */
    if (frames > 0 && (st = dia_dac_decode(dac, dia_codes_data(codes, 0), frames, &audio, &samples)) != DIA_OK) {
        rc = fail("dia_dac_decode", st);
        goto done;
    }
    if ((st = dia_audio_write(argv[6], audio, samples, 44100, 0)) != DIA_OK) { rc = fail("dia_audio_write", st); goto done; }
    printf("generated %d new frames; wrote %s (%.2f s)\n", frames, argv[6], (double)samples / 44100.0);
    rc = 0;

done:
    dia_free(audio);
    dia_free(prompt);
    dia_free(prompt_audio);
    free(text);
    dia_codes_free(codes);
    dia_gen_params_free(params);
    dia_dac_free(dac);
    dia_model_free(model);
    return rc;
}
