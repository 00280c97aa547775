/* safetensors.c - strict, mmap-based reader for safetensors files and sharded indexes. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define ST_MAX_HEADER (100u * 1024u * 1024u)

int dia_is_dir(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int dia_file_exists(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

char *dia_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    snprintf(buf, cap, "%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
    return buf;
}

char *dia_config_path(char *buf, size_t cap, const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    if (!dia_is_dir(path)) {
        char *slash = strrchr(dir, '/');
        if (slash == dir) dir[1] = 0; /* "/model.safetensors" */
        else if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    return dia_path_join(buf, cap, dir, "config.json");
}

dia_status dia_read_text_file(const char *path, char **out, size_t max_bytes) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return dia_fail(DIA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return dia_fail(DIA_ERR_IO, "cannot seek %s", path);
    }
    long len = ftell(f);
    if (len < 0 || (size_t)len > max_bytes) {
        fclose(f);
        return dia_fail(DIA_ERR_IO, "%s: size %ld is not readable or above %zu bytes", path, len, max_bytes);
    }
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return dia_fail(DIA_ERR_IO, "short read on %s", path);
    }
    buf[len] = 0;
    *out = buf;
    return DIA_OK;
}

static int parse_dtype(const char *s, dia_dtype *t) {
    if (!strcmp(s, "F32")) *t = DIA_F32;
    else if (!strcmp(s, "F16")) *t = DIA_F16;
    else if (!strcmp(s, "BF16")) *t = DIA_BF16;
    else if (!strcmp(s, "I32")) *t = DIA_I32;
    else if (!strcmp(s, "I64")) *t = DIA_I64;
    else return 0;
    return 1;
}

int dia_json_whole(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi && v->valuedouble == floor(v->valuedouble);
}

static int cmp_by_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    const char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

/* Parse the header of the mapping `file` and append its tensors to ar. */
static dia_status parse_header(const char *path, st_archive *ar, int file) {
    const uint8_t *base = ar->maps[file].base;
    size_t size = ar->maps[file].size;
    if (size < 8) return dia_fail(DIA_ERR_BAD_MODEL, "%s: truncated (%zu bytes, no header length)", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8)
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: header length %llu does not fit the file (%zu bytes)", path,
                        (unsigned long long)hlen, size);
    cJSON *root = cJSON_ParseWithLength((const char *)base + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: header is not a JSON object", path);
    }
    const uint8_t *data = base + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    int count = 0;
    for (cJSON *it = root->child; it; it = it->next) count += strcmp(it->string, "__metadata__") != 0;
    st_tensor *nt = realloc(ar->tensors, sizeof(st_tensor) * (size_t)(ar->n_tensors + count));
    if (!nt) {
        cJSON_Delete(root);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ar->tensors = nt;
    int first = ar->n_tensors;
    dia_status st = DIA_OK;
    for (cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) continue;
        const char *name = it->string;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        st_tensor t = {0};
        t.file = file;
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: entry lacks dtype/shape/data_offsets", path, name);
            break;
        }
        if (!parse_dtype(dt->valuestring, &t.dtype)) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: unknown dtype %s", path, name, dt->valuestring);
            break;
        }
        t.ndim = cJSON_GetArraySize(shape);
        if (t.ndim > 8) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: %d dimensions", path, name, t.ndim);
            break;
        }
        /* sizes and offsets are whole numbers in range before any conversion, and the element count does not
         * wrap around */
        uint64_t nelem = 1;
        int bad = 0;
        for (int d = 0; d < t.ndim; d++) {
            cJSON *v = cJSON_GetArrayItem(shape, d);
            if (!dia_json_whole(v, 0, 1e12) || (t.shape[d] = (int64_t)v->valuedouble,
                                         __builtin_mul_overflow(nelem, (uint64_t)t.shape[d], &nelem)))
                bad = 1;
        }
        cJSON *j0 = cJSON_GetArrayItem(offs, 0), *j1 = cJSON_GetArrayItem(offs, 1);
        if (bad || !dia_json_whole(j0, 0, 9e15) || !dia_json_whole(j1, 0, 9e15) || j1->valuedouble < j0->valuedouble) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: malformed shape or data_offsets", path, name);
            break;
        }
        const double o0 = j0->valuedouble, o1 = j1->valuedouble;
        if (o1 > (double)data_size) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: data [%.0f, %.0f) beyond the end of the file (truncated?)",
                          path, name, o0, o1);
            break;
        }
        t.nbytes = (size_t)(o1 - o0);
        uint64_t need;
        if (__builtin_mul_overflow(nelem, (uint64_t)dia_dtype_size(t.dtype), &need) || need != t.nbytes) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s: %zu bytes do not match its shape and dtype", path, name,
                          t.nbytes);
            break;
        }
        t.data = data + (size_t)o0;
        t.name = strdup(name);
        if (!t.name) {
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        ar->tensors[ar->n_tensors++] = t;
    }
    cJSON_Delete(root);
    if (st != DIA_OK) return st;
    /* the data regions of one file must not overlap */
    int n = ar->n_tensors - first;
    st_tensor *tmp = malloc(sizeof(st_tensor) * (size_t)(n ? n : 1));
    if (!tmp) return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(tmp, ar->tensors + first, sizeof(st_tensor) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(st_tensor), cmp_by_offset);
    for (int i = 1; i < n; i++) {
        if ((const char *)tmp[i - 1].data + tmp[i - 1].nbytes > (const char *)tmp[i].data) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensors %s and %s overlap", path, tmp[i - 1].name, tmp[i].name);
            break;
        }
    }
    free(tmp);
    return st;
}

static dia_status map_file(const char *path, st_archive *ar, int *file) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dia_fail(DIA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dia_fail(DIA_ERR_IO, "%s is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *base = NULL;
    if (size > 0) {
        base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            close(fd);
            return dia_fail(DIA_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        }
    }
    close(fd);
    st_map *nm = realloc(ar->maps, sizeof(st_map) * (size_t)(ar->n_maps + 1));
    if (!nm) {
        if (base) munmap(base, size);
        return dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ar->maps = nm;
    ar->maps[ar->n_maps].base = base;
    ar->maps[ar->n_maps].size = size;
    *file = ar->n_maps++;
    return DIA_OK;
}

static dia_status check_unique(const st_archive *ar) {
    for (int i = 0; i < ar->n_tensors; i++)
        for (int j = i + 1; j < ar->n_tensors; j++)
            if (!strcmp(ar->tensors[i].name, ar->tensors[j].name))
                return dia_fail(DIA_ERR_BAD_MODEL, "tensor %s appears twice", ar->tensors[i].name);
    return DIA_OK;
}

dia_status st_open_file(const char *path, st_archive *ar) {
    memset(ar, 0, sizeof *ar);
    int file = 0;
    dia_status st = map_file(path, ar, &file);
    if (st == DIA_OK) st = parse_header(path, ar, file);
    if (st == DIA_OK) st = check_unique(ar);
    if (st != DIA_OK) st_close(ar);
    return st;
}

static dia_status open_index(const char *index_path, st_archive *ar) {
    memset(ar, 0, sizeof *ar);
    char *text = NULL;
    dia_status st = dia_read_text_file(index_path, &text, 64u << 20);
    if (st != DIA_OK) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: malformed JSON or no \"weight_map\" object", index_path);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    /* open each distinct shard once, in order of first appearance */
    char **shards = NULL;
    int n_shards = 0;
    for (cJSON *it = map->child; it && st == DIA_OK; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: weight_map entry %s is not a file name", index_path, it->string);
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_shards; i++) seen |= !strcmp(shards[i], it->valuestring);
        if (seen) continue;
        char **ns = realloc(shards, sizeof(char *) * (size_t)(n_shards + 1));
        if (!ns) {
            st = dia_fail(DIA_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        shards = ns;
        shards[n_shards++] = it->valuestring;
        char p[4096];
        int file = 0;
        dia_path_join(p, sizeof p, dir, it->valuestring);
        st = map_file(p, ar, &file);
        if (st == DIA_OK) st = parse_header(p, ar, file);
    }
    /* every tensor in the shards must be listed in the map, in the shard the map names */
    for (int i = 0; i < ar->n_tensors && st == DIA_OK; i++) {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(map, ar->tensors[i].name);
        if (!e) st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s is in a shard but not in weight_map", index_path,
                              ar->tensors[i].name);
        else if (strcmp(e->valuestring, shards[ar->tensors[i].file]) != 0)
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s is in %s, weight_map says %s", index_path,
                          ar->tensors[i].name, shards[ar->tensors[i].file], e->valuestring);
    }
    for (cJSON *it = map->child; it && st == DIA_OK; it = it->next)
        if (!st_find(ar, it->string))
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: tensor %s is in weight_map but in no shard", index_path, it->string);
    if (st == DIA_OK) st = check_unique(ar);
    free(shards);
    cJSON_Delete(root);
    if (st != DIA_OK) st_close(ar);
    return st;
}

dia_status st_open(const char *path, st_archive *ar) {
    memset(ar, 0, sizeof *ar);
    if (!path) return dia_fail(DIA_ERR_INVALID_ARG, "checkpoint path is NULL");
    if (dia_is_dir(path)) {
        char p[4096];
        dia_path_join(p, sizeof p, path, "model.safetensors.index.json");
        if (dia_file_exists(p)) return open_index(p, ar);
        dia_path_join(p, sizeof p, path, "model.safetensors");
        if (dia_file_exists(p)) return st_open_file(p, ar);
        return dia_fail(DIA_ERR_IO, "%s: neither model.safetensors nor model.safetensors.index.json found", path);
    }
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".json")) return open_index(path, ar);
    return st_open_file(path, ar);
}

void st_close(st_archive *ar) {
    if (!ar) return;
    for (int i = 0; i < ar->n_tensors; i++) free(ar->tensors[i].name);
    for (int i = 0; i < ar->n_maps; i++)
        if (ar->maps[i].base) munmap(ar->maps[i].base, ar->maps[i].size);
    free(ar->tensors);
    free(ar->maps);
    memset(ar, 0, sizeof *ar);
}

st_tensor *st_find(const st_archive *ar, const char *name) {
    for (int i = 0; i < ar->n_tensors; i++)
        if (!strcmp(ar->tensors[i].name, name)) return &ar->tensors[i];
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

dia_status st_take(st_archive *ar, const char *name, int ndim, const int64_t *shape, st_tensor **out) {
    st_tensor *t = st_find(ar, name);
    *out = NULL;
    if (!t) return dia_fail(DIA_ERR_BAD_MODEL, "missing tensor %s", name);
    if (t->dtype != DIA_F32 && t->dtype != DIA_F16 && t->dtype != DIA_BF16)
        return dia_fail(DIA_ERR_BAD_MODEL, "tensor %s has dtype %s; expected F32, F16 or BF16", name,
                        dia_dtype_name(t->dtype));
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[128], got[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return dia_fail(DIA_ERR_BAD_MODEL, "tensor %s has shape %s; expected %s", name, got, want);
    }
    t->used = 1;
    *out = t;
    return DIA_OK;
}

dia_status st_check_all_used(const st_archive *ar) {
    for (int i = 0; i < ar->n_tensors; i++)
        if (!ar->tensors[i].used) return dia_fail(DIA_ERR_BAD_MODEL, "unexpected tensor %s", ar->tensors[i].name);
    return DIA_OK;
}
