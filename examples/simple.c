/*
 * simple.c - the smallest complete libdia program: text in, WAV out.
 *
 *   cc simple.c $(pkg-config --cflags --libs dia) -o simple
 *   ./simple MODEL_DIR DAC_DIR "[S1] Hello there. [S2] Hi!" out.wav [SEED]
 *
 * MODEL_DIR holds a Dia checkpoint (config.json + model.safetensors, e.g. a snapshot of
 * nari-labs/Dia-1.6B-0626), DAC_DIR a DAC checkpoint (descript/dac_44khz). Uses only <dia.h>.
 */
#include <stdio.h>
#include <stdlib.h>

#include <dia.h>

/* Print the library's reason for a failure and return 1. */
static int fail(const char *what, dia_status st) {
    fprintf(stderr, "simple: %s failed: %s (%s)\n", what, dia_status_string(st), dia_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL_DIR DAC_DIR TEXT OUT.wav [SEED]\n", argv[0]);
        return 2;
    }
    if (dia_abi_version() != DIA_ABI_VERSION) {
        fprintf(stderr, "simple: built for libdia ABI %d, loaded ABI %d\n", DIA_ABI_VERSION, dia_abi_version());
        return 1;
    }
    const char *text = argv[3];
    int rc = 1;
    dia_model *model = NULL;
    dia_dac *dac = NULL;
    dia_gen_params *params = NULL;
    dia_codes *codes = NULL;
    float *audio = NULL;
    size_t samples = 0;
    dia_status st;

    /* 1. load the model and the codec (options NULL: CPU, all cores, checkpoint dtype) */
    if ((st = dia_model_load(argv[1], NULL, &model)) != DIA_OK) { rc = fail("dia_model_load", st); goto done; }
    if ((st = dia_dac_load(argv[2], NULL, &dac)) != DIA_OK) { rc = fail("dia_dac_load", st); goto done; }

    /* 2. sampling parameters: the reference defaults, max_tokens capped by the model's length */
    int64_t max_frames = 0;
    if ((st = dia_model_info(model, "max_frames", &max_frames)) != DIA_OK) { rc = fail("dia_model_info", st); goto done; }
    if ((st = dia_gen_params_new(&params)) != DIA_OK) { rc = fail("dia_gen_params_new", st); goto done; }
    if (max_frames < 3072 && (st = dia_gen_params_set(params, "max_tokens", (double)max_frames)) != DIA_OK) {
        rc = fail("dia_gen_params_set", st);
        goto done;
    }
    if (argc == 6 && (st = dia_gen_params_set(params, "seed", atof(argv[5]))) != DIA_OK) {
        rc = fail("dia_gen_params_set(seed)", st);
        goto done;
    }

    /* 3. text -> audio codes (one item, no audio prompt, no frame callback) */
    st = dia_generate(model, params, 1, &text, NULL, NULL, NULL, NULL, &codes);
    if (st != DIA_OK) { rc = fail("dia_generate", st); goto done; }
    int frames = dia_codes_frames(codes, 0);
    printf("generated %d frames\n", frames);

    /* 4. codes -> 44.1 kHz audio -> WAV file */
    if (frames > 0) {
        if ((st = dia_dac_decode(dac, dia_codes_data(codes, 0), frames, &audio, &samples)) != DIA_OK) {
            rc = fail("dia_dac_decode", st);
            goto done;
        }
    }
    if ((st = dia_audio_write(argv[4], audio, samples, 44100, 0)) != DIA_OK) { rc = fail("dia_audio_write", st); goto done; }
    printf("wrote %s: %zu samples (%.2f s)\n", argv[4], samples, (double)samples / 44100.0);
    rc = 0;

done:
    dia_free(audio);
    dia_codes_free(codes);
    dia_gen_params_free(params);
    dia_dac_free(dac);
    dia_model_free(model);
    return rc;
}
