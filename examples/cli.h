/* cli.h - the `dia` command line tool: one function per subcommand (examples/cli_*.c). */
#ifndef DIA_CLI_H
#define DIA_CLI_H

#include <stddef.h>
#include <stdint.h>

int dia_cli_generate(int argc, char **argv);
int dia_cli_dac_decode(int argc, char **argv);
int dia_cli_dac_encode(int argc, char **argv);
int dia_cli_download(int argc, char **argv);

/* A hub id "org/name" -> its snapshot directory in the local Hugging Face hub cache (into buf);
 * any other argument is returned as is. NULL (with a message) when the id is not cached. */
const char *cli_resolve_model(const char *arg, char *buf, size_t cap);

/* Shared helpers (examples/cli_npy.c): int32 [rows, cols] and float32 [n] .npy files. */
int cli_npy_read_i32(const char *path, int32_t **data, int *rows, int *cols);
int cli_npy_write_i32(const char *path, const int32_t *data, int rows, int cols);
int cli_npy_read_f32(const char *path, float **data, size_t *n);
int cli_npy_write_f32(const char *path, const float *data, size_t n);

#endif
