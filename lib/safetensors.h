/*
 * safetensors.h - strict reader for .safetensors files and sharded checkpoints
 * (model.safetensors.index.json). Files are memory-mapped; tensor data is never copied.
 */
#ifndef DIA_SAFETENSORS_H
#define DIA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct st_tensor {
    char *name;
    dia_dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data; /* inside the mapping */
    size_t nbytes;
    int file;         /* index into st_archive.maps */
    int used;         /* set by st_archive_take(), for the "unexpected tensor" check */
} st_tensor;

typedef struct st_map {
    void *base;
    size_t size;
} st_map;

typedef struct st_archive {
    st_tensor *tensors;
    int n_tensors;
    st_map *maps;
    int n_maps;
} st_archive;

/* Open one .safetensors file. DIA_ERR_IO if it cannot be opened/mapped, DIA_ERR_BAD_MODEL on a
 * malformed header (bad length, bad JSON, unknown dtype, offsets outside the file or not
 * matching the shape, overlapping data). */
dia_status st_open_file(const char *path, st_archive *ar);
/* Open a checkpoint directory: model.safetensors.index.json (all shards it names) if present,
 * else model.safetensors. Also accepts a path to a .safetensors file or to an index .json. */
dia_status st_open(const char *path, st_archive *ar);
void st_close(st_archive *ar);

/* Find a tensor by name (NULL if absent). */
st_tensor *st_find(const st_archive *ar, const char *name);
/* Find a tensor, check dtype is a float type and the shape equals `shape[ndim]`; marks it used.
 * DIA_ERR_BAD_MODEL (naming the tensor) if missing or mis-shaped. */
dia_status st_take(st_archive *ar, const char *name, int ndim, const int64_t *shape, st_tensor **out);
/* DIA_ERR_BAD_MODEL naming the first tensor never taken. */
dia_status st_check_all_used(const st_archive *ar);

/* Read a whole small file into a NUL-terminated heap string (free()). */
dia_status dia_read_text_file(const char *path, char **out, size_t max_bytes);
/* path join into buf; returns buf. */
char *dia_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* The config.json of a checkpoint: in the directory `path`, or beside the file `path`; into buf. */
char *dia_config_path(char *buf, size_t cap, const char *path);
int dia_is_dir(const char *path);
/* 1 if the JSON value v is a number that is a whole number in [lo, hi] (then it converts to an
 * integer exactly; a double past an integer type's range has no defined conversion). */
struct cJSON;
int dia_json_whole(const struct cJSON *v, double lo, double hi);
int dia_file_exists(const char *path);

#endif
