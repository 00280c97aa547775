/* cli_hub.c - the Hugging Face hub cache layout for the CLI: resolve "org/name" to a local snapshot
 * directory, and `dia download` (libcurl: resume, progress, sha256 check of LFS files).
 *
 * Layout: $HF_HUB_CACHE (or $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub)
 *   /models--org--name/
 *   refs/main                 the snapshot's commit
 *   blobs/<sha256 or blob id> file contents
 *   snapshots/<commit>/<file> symlinks to ../../blobs/<blob>
 * The server is $HF_ENDPOINT (default https://huggingface.co): GET /api/models/<repo>/revision/main
 * ?blobs=true lists the files, GET /<repo>/resolve/<commit>/<file> serves one. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void cache_root(char *buf, size_t cap) {
    const char *c = getenv("HF_HUB_CACHE"), *h = getenv("HF_HOME"), *x = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (c && *c) snprintf(buf, cap, "%s", c);
    else if (h && *h) snprintf(buf, cap, "%s/hub", h);
    else if (x && *x) snprintf(buf, cap, "%s/huggingface/hub", x);
    else snprintf(buf, cap, "%s/.cache/huggingface/hub", home ? home : ".");
}

/* "org/name": one slash, no path-like start, and not an existing path. */
static int is_repo_id(const char *s) {
    struct stat sb;
    if (!s || !*s || s[0] == '/' || s[0] == '.' || stat(s, &sb) == 0) return 0;
    const char *sl = strchr(s, '/');
    return sl && sl != s && sl[1] && !strchr(sl + 1, '/');
}

static void repo_dir(char *buf, size_t cap, const char *repo) {
    char root[2048];
    cache_root(root, sizeof root);
    const char *sl = strchr(repo, '/');
    snprintf(buf, cap, "%s/models--%.*s--%s", root, (int)(sl - repo), repo, sl + 1);
}

const char *cli_resolve_model(const char *arg, char *buf, size_t cap) {
    if (!is_repo_id(arg)) return arg;
    char dir[3072], ref[512], path[3600];
    repo_dir(dir, sizeof dir, arg);
    snprintf(path, sizeof path, "%s/refs/main", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(ref, sizeof ref, f)) {
        if (f) fclose(f);
        fprintf(stderr, "dia: %s is not in the hub cache (%s); run: dia download %s\n", arg, dir, arg);
        return NULL;
    }
    fclose(f);
    ref[strcspn(ref, "\r\n")] = 0;
    snprintf(buf, cap, "%s/snapshots/%s", dir, ref);
    return buf;
}

static int mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

typedef struct membuf {
    char *data;
    size_t len;
} membuf;

static size_t to_mem(void *p, size_t sz, size_t n, void *u) {
    membuf *m = u;
    char *nd = realloc(m->data, m->len + sz * n + 1);
    if (!nd) return 0;
    m->data = nd;
    memcpy(m->data + m->len, p, sz * n);
    m->len += sz * n;
    m->data[m->len] = 0;
    return sz * n;
}

typedef struct progress {
    const char *name;
    curl_off_t base;
    double last;
} progress;

static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ul, curl_off_t un) {
    (void)ul, (void)un;
    progress *p = u;
    double frac = dltotal > 0 ? (double)(p->base + dlnow) / (double)(p->base + dltotal) : 0;
    if (frac - p->last >= 0.02 || (dltotal > 0 && dlnow == dltotal && p->last < 1)) {
        fprintf(stderr, "\rdia: %s %5.1f%% of %.1f MB   ", p->name, 100 * frac, (double)(p->base + dltotal) / 1e6);
        p->last = frac;
    }
    return 0;
}

static int sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[1 << 16], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int http_get(CURL *c, const char *url, FILE *to, membuf *mem, curl_off_t resume, progress *prog) {
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "libdia-download/0.1");
    const char *token = getenv("HF_TOKEN");
    struct curl_slist *hdr = NULL;
    if (token && *token) {
        char h[1024];
        snprintf(h, sizeof h, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    if (to) {
        curl_easy_setopt(c, CURLOPT_WRITEDATA, to);
        if (resume > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, resume);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_mem);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    }
    if (prog) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, prog);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        fprintf(stderr, "\ndia: GET %s: %s\n", url, curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

static int wanted(const char *name) {
    size_t n = strlen(name);
    return !strchr(name, '/') && ((n > 5 && !strcmp(name + n - 5, ".json")) ||
                                  (n > 12 && !strcmp(name + n - 12, ".safetensors")));
}

/* Download one file into blobs/<blob> (resuming a .incomplete) and link it into the snapshot. */
static int fetch_file(CURL *c, const char *endpoint, const char *repo, const char *dir, const char *commit,
                      const char *name, const char *blob, long long size, const char *sha256) {
    char blob_path[4096], part[4200], url[4096], link[4096], target[4096];
    snprintf(blob_path, sizeof blob_path, "%s/blobs/%s", dir, blob);
    struct stat sb;
    if (!(stat(blob_path, &sb) == 0 && (size < 0 || sb.st_size == size))) {
        snprintf(part, sizeof part, "%s.incomplete", blob_path);
        curl_off_t have = stat(part, &sb) == 0 ? (curl_off_t)sb.st_size : 0;
        if (size >= 0 && have > size) have = 0;
        FILE *f = fopen(part, have ? "ab" : "wb");
        if (!f) {
            fprintf(stderr, "dia: cannot write %s: %s\n", part, strerror(errno));
            return -1;
        }
        snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", endpoint, repo, commit, name);
        progress prog = {name, have, -1};
        int rc = (size >= 0 && have == size) ? 0 : http_get(c, url, f, NULL, have, &prog);
        if (fclose(f) != 0) rc = -1;
        fprintf(stderr, "\n");
        if (rc != 0) return -1; /* the partial file stays for a resume */
        if (size >= 0 && (stat(part, &sb) != 0 || sb.st_size != size)) {
            fprintf(stderr, "dia: %s: got %lld bytes, expected %lld\n", name, (long long)sb.st_size, size);
            return -1;
        }
        if (sha256) {
            char hex[65];
            if (sha256_file(part, hex) != 0 || strcmp(hex, sha256) != 0) {
                fprintf(stderr, "dia: %s: sha256 mismatch (got %s, expected %s); removed\n", name, hex, sha256);
                unlink(part);
                return -1;
            }
        }
        if (rename(part, blob_path) != 0) return -1;
    }
    snprintf(link, sizeof link, "%s/snapshots/%s/%s", dir, commit, name);
    snprintf(target, sizeof target, "../../blobs/%s", blob);
    unlink(link);
    if (symlink(target, link) != 0) {
        fprintf(stderr, "dia: cannot link %s: %s\n", link, strerror(errno));
        return -1;
    }
    return 0;
}

int dia_cli_download(int argc, char **argv) {
    if (argc != 2 || !is_repo_id(argv[1])) {
        fprintf(stderr, "usage: dia download ORG/NAME   (e.g. nari-labs/Dia-1.6B-0626, descript/dac_44khz)\n");
        return 2;
    }
    const char *repo = argv[1];
    const char *endpoint = getenv("HF_ENDPOINT");
    if (!endpoint || !*endpoint) endpoint = "https://huggingface.co";
    char dir[3072], path[4096], url[4096];
    repo_dir(dir, sizeof dir, repo);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    membuf mem = {0};
    int rc = 1;
    cJSON *info = NULL;
    snprintf(url, sizeof url, "%s/api/models/%s/revision/main?blobs=true", endpoint, repo);
    if (!c || http_get(c, url, NULL, &mem, 0, NULL) != 0) goto done;
    info = cJSON_Parse(mem.data ? mem.data : "");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(info, "sha");
    const cJSON *sib = cJSON_GetObjectItemCaseSensitive(info, "siblings");
    if (!cJSON_IsString(sha) || !cJSON_IsArray(sib) || strchr(sha->valuestring, '/')) {
        fprintf(stderr, "dia: %s: unexpected answer from %s\n", repo, url);
        goto done;
    }
    snprintf(path, sizeof path, "%s/snapshots/%s", dir, sha->valuestring);
    char blobs[3200], refs[3200];
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    snprintf(refs, sizeof refs, "%s/refs", dir);
    if (mkdirs(path) || mkdirs(blobs) || mkdirs(refs)) {
        fprintf(stderr, "dia: cannot create %s: %s\n", dir, strerror(errno));
        goto done;
    }
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, sib) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "rfilename");
        if (!cJSON_IsString(name) || !wanted(name->valuestring)) continue;
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(f, "lfs");
        const cJSON *lsha = cJSON_GetObjectItemCaseSensitive(lfs, "sha256");
        const cJSON *blob_id = cJSON_GetObjectItemCaseSensitive(f, "blobId");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
        const char *blob = cJSON_IsString(lsha) ? lsha->valuestring : cJSON_IsString(blob_id) ? blob_id->valuestring : NULL;
        if (!blob || strchr(blob, '/')) {
            fprintf(stderr, "dia: %s: no blob id for %s\n", repo, name->valuestring);
            goto done;
        }
        if (fetch_file(c, endpoint, repo, dir, sha->valuestring, name->valuestring, blob,
                       cJSON_IsNumber(size) ? (long long)size->valuedouble : -1,
                       cJSON_IsString(lsha) ? lsha->valuestring : NULL) != 0)
            goto done;
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "dia: %s has no .json or .safetensors files\n", repo);
        goto done;
    }
    snprintf(path, sizeof path, "%s/refs/main", dir);
    FILE *rf = fopen(path, "w");
    if (!rf || fputs(sha->valuestring, rf) < 0 || fclose(rf) != 0) {
        fprintf(stderr, "dia: cannot write %s\n", path);
        goto done;
    }
    fprintf(stderr, "dia: %s: %d files in %s/snapshots/%s\n", repo, n, dir, sha->valuestring);
    rc = 0;
done:
    cJSON_Delete(info);
    free(mem.data);
    if (c) curl_easy_cleanup(c);
    curl_global_cleanup();
    return rc;
}
