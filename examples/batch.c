/*
 * batch.c - several texts in one dia_generate call (one forward pass per step for the whole batch).
 *
 *   cc batch.c $(pkg-config --cflags --libs dia) -o batch
 *   ./batch MODEL_DIR DAC_DIR OUT_PREFIX "[S1] first text." "[S1] second text." ...
 *
 * Writes OUT_PREFIX0.wav, OUT_PREFIX1.wav, ... With greedy decoding (DIA_TEMPERATURE=0) each
 * item's codes equal those of its text generated alone. With sampling, the random numbers are
 * keyed by (seed, item index, step, channel): a batch reproduces exactly across runs and thread
 * counts, and equal texts at different indices get different samples. Set DIA_THREADS to limit
 * the CPU threads.
 * Uses only <dia.h>.
 */
#include <stdio.h>
#include <stdlib.h>

#include <dia.h>

static int fail(const char *what, dia_status st) {
    fprintf(stderr, "batch: %s failed: %s (%s)\n", what, dia_status_string(st), dia_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL_DIR DAC_DIR OUT_PREFIX TEXT [TEXT...]\n", argv[0]);
        return 2;
    }
    const char *prefix = argv[3];
    int batch = argc - 4;
    const char *const *texts = (const char *const *)(argv + 4);
    int rc = 1;
    dia_options *opts = NULL;
    dia_model *model = NULL;
    dia_dac *dac = NULL;
    dia_gen_params *params = NULL;
    dia_codes *codes = NULL;
    dia_status st;

    /* loading options: optional thread count from the environment */
    if ((st = dia_options_new(&opts)) != DIA_OK) return fail("dia_options_new", st);
    const char *threads = getenv("DIA_THREADS");
    if (threads && (st = dia_options_set(opts, "threads", threads)) != DIA_OK) { rc = fail("option threads", st); goto done; }
    if ((st = dia_model_load(argv[1], opts, &model)) != DIA_OK) { rc = fail("dia_model_load", st); goto done; }
    if ((st = dia_dac_load(argv[2], opts, &dac)) != DIA_OK) { rc = fail("dia_dac_load", st); goto done; }

    int64_t max_frames = 0, sample_rate = 0;
    if ((st = dia_model_info(model, "max_frames", &max_frames)) != DIA_OK) { rc = fail("dia_model_info", st); goto done; }
    if ((st = dia_dac_info(dac, "sample_rate", &sample_rate)) != DIA_OK) { rc = fail("dia_dac_info", st); goto done; }
    if ((st = dia_gen_params_new(&params)) != DIA_OK) { rc = fail("dia_gen_params_new", st); goto done; }
    if (max_frames < 3072 && (st = dia_gen_params_set(params, "max_tokens", (double)max_frames)) != DIA_OK) {
        rc = fail("max_tokens", st);
        goto done;
    }
    const char *temp = getenv("DIA_TEMPERATURE");
    if (temp && (st = dia_gen_params_set(params, "temperature", atof(temp))) != DIA_OK) { rc = fail("temperature", st); goto done; }
    if ((st = dia_gen_params_set(params, "seed", 42)) != DIA_OK) { rc = fail("seed", st); goto done; }

    /* the whole batch at once; no prompts, no callback */
    st = dia_generate(model, params, batch, texts, NULL, NULL, NULL, NULL, &codes);
    if (st != DIA_OK) { rc = fail("dia_generate", st); goto done; }
    if (dia_codes_batch(codes) != batch) {
        fprintf(stderr, "batch: expected %d items, got %d\n", batch, dia_codes_batch(codes));
        goto done;
    }
    for (int b = 0; b < batch; b++) {
        int frames = dia_codes_frames(codes, b);
        float *audio = NULL;
        size_t samples = 0;
        if (frames > 0 && (st = dia_dac_decode(dac, dia_codes_data(codes, b), frames, &audio, &samples)) != DIA_OK) {
            rc = fail("dia_dac_decode", st);
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s%d.wav", prefix, b);
        st = dia_audio_write(path, audio, samples, (int)sample_rate, 0);
        dia_free(audio);
        if (st != DIA_OK) { rc = fail("dia_audio_write", st); goto done; }
        printf("item %d: %d frames -> %s (%.2f s)\n", b, frames, path, (double)samples / (double)sample_rate);
    }
    rc = 0;

done:
    dia_codes_free(codes);
    dia_gen_params_free(params);
    dia_dac_free(dac);
    dia_model_free(model);
    dia_options_free(opts);
    return rc;
}
