/* cli_main.c - the `dia` command line tool: subcommand dispatch and usage. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dia.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: dia <command> [options]\n"
            "\n"
            "  dia generate --model DIR [--dac DIR] (--text TEXT | --text-file FILE)...\n"
            "               [--prompt-codes FILE.npy | -]... [--audio-prompt FILE --prompt-text TEXT]\n"
            "               [--max-tokens N] [--cfg-scale S] [--temperature T] [--top-p P]\n"
            "               [--cfg-filter-top-k K] [--seed N] [--backend cpu|cuda] [--threads N]\n"
            "               [--dtype auto|f32|bf16] [--encoder-memory device|host]\n"
            "               [--codes-out FILE.npy] [--out FILE.wav] [--quiet]\n"
            "  dia dac-decode --dac DIR --codes FILE.npy --out OUT\n"
            "  dia dac-encode --dac DIR --in IN --codes-out FILE.npy\n"
            "  dia download ORG/NAME          (into the Hugging Face hub cache; --model/--dac accept ORG/NAME)\n"
            "  dia --version\n");
}

/* Library errors reach the user once, through the command's own message (dia_last_error()); the
 * log callback shows only warnings. */
static void on_log(dia_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == DIA_LOG_WARN) fprintf(stderr, "dia: warning: %s\n", msg);
}

int main(int argc, char **argv) {
    dia_set_log_callback(on_log, NULL);
    dia_set_log_level(DIA_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("dia %s (libdia ABI %d)\n", dia_version_string(), dia_abi_version());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "generate")) return dia_cli_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "dac-decode")) return dia_cli_dac_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "dac-encode")) return dia_cli_dac_encode(argc - 1, argv + 1);
    if (!strcmp(cmd, "download")) return dia_cli_download(argc - 1, argv + 1);
    fprintf(stderr, "dia: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
