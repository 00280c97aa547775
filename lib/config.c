/* config.c - Dia config.json, in the transformers schema (token ids and rope_parameters inside
 * decoder_config) and the nari-labs schema (token ids at the top level, rope_theta per side). */
#include <cjson/cJSON.h>
#include <float.h>
#include <string.h>

#include "log.h"
#include "model.h"

static dia_status get_int(const cJSON *obj, const char *side, const char *key, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!dia_json_whole(v, lo, hi))
        return dia_fail(DIA_ERR_BAD_MODEL, "config: %s%s%s is missing or not an integer in [%d, %d]", side,
                        *side ? "." : "", key, lo, hi);
    *out = (int)v->valuedouble;
    return DIA_OK;
}

static dia_status get_float(const cJSON *obj, const char *side, const char *key, float dflt, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return DIA_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !(v->valuedouble <= FLT_MAX)) /* (a float holds it) */
        return dia_fail(DIA_ERR_BAD_MODEL, "config: %s.%s is not a positive number a float can hold", side, key);
    *out = (float)v->valuedouble;
    return DIA_OK;
}

/* rope_theta (nari / transformers 4.x) or rope_parameters.rope_theta (transformers 5.x) */
static dia_status get_theta(const cJSON *obj, const char *side, float *out) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(obj, "rope_parameters");
    if (cJSON_IsObject(rp)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "default") != 0)
            return dia_fail(DIA_ERR_BAD_MODEL, "config: %s.rope_parameters.rope_type \"%s\" is not supported", side,
                            type->valuestring);
        return get_float(rp, side, "rope_theta", 10000.0f, out);
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(obj, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) return dia_fail(DIA_ERR_BAD_MODEL, "config: %s.rope_scaling is not supported", side);
    return get_float(obj, side, "rope_theta", 10000.0f, out);
}

static dia_status check_act(const cJSON *obj, const char *side) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
    if (a && !(cJSON_IsString(a) && !strcmp(a->valuestring, "silu")))
        return dia_fail(DIA_ERR_BAD_MODEL, "config: %s.hidden_act must be \"silu\"", side);
    return DIA_OK;
}

/* A special token id at the top level (nari schema) or in decoder_config (transformers schema). */
static dia_status get_token(const cJSON *root, const cJSON *dec, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsNumber(v)) return get_int(root, "", key, 0, 1 << 20, out);
    v = cJSON_GetObjectItemCaseSensitive(dec, key);
    if (cJSON_IsNumber(v)) return get_int(dec, "decoder_config", key, 0, 1 << 20, out);
    return dia_fail(DIA_ERR_BAD_MODEL, "config: %s is missing (top level or decoder_config)", key);
}

dia_status dia_config_parse(const char *json, const char *what, dia_config *c) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dia_fail(DIA_ERR_BAD_MODEL, "%s: malformed JSON", what);
    }
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(root, "encoder_config");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder_config");
    dia_status st = DIA_OK;
    if (!cJSON_IsObject(enc) || !cJSON_IsObject(dec)) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: no encoder_config / decoder_config objects (not a Dia-1.6B-0626 config)",
                      what);
        goto done;
    }
    const int BIG = 1 << 20;
#define INT(obj, side, key, lo, hi, dst) \
    if ((st = get_int(obj, side, key, lo, hi, dst)) != DIA_OK) goto done
    INT(enc, "encoder_config", "vocab_size", 1, BIG, &c->enc_vocab);
    INT(enc, "encoder_config", "hidden_size", 1, BIG, &c->enc_width);
    INT(enc, "encoder_config", "intermediate_size", 1, BIG, &c->enc_inter);
    INT(enc, "encoder_config", "num_hidden_layers", 1, DIA_MAX_LAYERS, &c->enc_layers);
    INT(enc, "encoder_config", "num_attention_heads", 1, 1024, &c->enc_heads);
    INT(enc, "encoder_config", "num_key_value_heads", 1, 1024, &c->enc_kv_heads);
    INT(enc, "encoder_config", "head_dim", 2, 4096, &c->enc_head_dim);
    INT(enc, "encoder_config", "max_position_embeddings", 1, BIG, &c->text_length);
    INT(dec, "decoder_config", "vocab_size", 1, BIG, &c->dec_vocab);
    INT(dec, "decoder_config", "num_channels", 1, DIA_MAX_CHANNELS, &c->channels);
    INT(dec, "decoder_config", "hidden_size", 1, BIG, &c->dec_width);
    INT(dec, "decoder_config", "intermediate_size", 1, BIG, &c->dec_inter);
    INT(dec, "decoder_config", "num_hidden_layers", 1, DIA_MAX_LAYERS, &c->dec_layers);
    INT(dec, "decoder_config", "num_attention_heads", 1, 1024, &c->dec_heads);
    INT(dec, "decoder_config", "num_key_value_heads", 1, 1024, &c->dec_kv_heads);
    INT(dec, "decoder_config", "head_dim", 2, 4096, &c->dec_head_dim);
    INT(dec, "decoder_config", "cross_num_attention_heads", 1, 1024, &c->cross_heads);
    INT(dec, "decoder_config", "cross_num_key_value_heads", 1, 1024, &c->cross_kv_heads);
    INT(dec, "decoder_config", "cross_head_dim", 1, 4096, &c->cross_head_dim);
    INT(dec, "decoder_config", "max_position_embeddings", 1, BIG, &c->max_frames);
#undef INT
    if ((st = get_float(enc, "encoder_config", "norm_eps", 1e-5f, &c->enc_eps)) != DIA_OK) goto done;
    if ((st = get_float(dec, "decoder_config", "norm_eps", 1e-5f, &c->dec_eps)) != DIA_OK) goto done;
    if ((st = get_theta(enc, "encoder_config", &c->enc_theta)) != DIA_OK) goto done;
    if ((st = get_theta(dec, "decoder_config", &c->dec_theta)) != DIA_OK) goto done;
    if ((st = check_act(enc, "encoder_config")) != DIA_OK || (st = check_act(dec, "decoder_config")) != DIA_OK)
        goto done;
    if ((st = get_token(root, dec, "bos_token_id", &c->bos)) != DIA_OK) goto done;
    if ((st = get_token(root, dec, "eos_token_id", &c->eos)) != DIA_OK) goto done;
    if ((st = get_token(root, dec, "pad_token_id", &c->pad)) != DIA_OK) goto done;
    const cJSON *dp = cJSON_GetObjectItemCaseSensitive(root, "delay_pattern");
    if (!cJSON_IsArray(dp) || cJSON_GetArraySize(dp) != c->channels) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: delay_pattern must be an array of num_channels (%d) integers", what,
                      c->channels);
        goto done;
    }
    for (int i = 0; i < c->channels; i++) {
        const cJSON *v = cJSON_GetArrayItem(dp, i);
        if (!dia_json_whole(v, 0, 1024)) {
            st = dia_fail(DIA_ERR_BAD_MODEL, "%s: delay_pattern[%d] is not an integer in [0, 1024]", what, i);
            goto done;
        }
        c->delay[i] = (int)v->valuedouble;
        if (c->delay[i] > c->max_delay) c->max_delay = c->delay[i];
    }
    if (c->enc_heads % c->enc_kv_heads || c->dec_heads % c->dec_kv_heads || c->cross_heads % c->cross_kv_heads) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: attention heads are not a multiple of key/value heads", what);
        goto done;
    }
    if (c->enc_head_dim % 2 || c->dec_head_dim % 2) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: head_dim must be even (RoPE)", what);
        goto done;
    }
    if (c->eos >= c->dec_vocab || c->pad >= c->dec_vocab || c->bos >= c->dec_vocab || c->eos >= c->pad ||
        c->pad >= c->bos) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: token ids eos %d < pad %d < bos %d < vocab %d expected", what, c->eos,
                      c->pad, c->bos, c->dec_vocab);
        goto done;
    }
    if (c->max_frames <= c->max_delay + 1) {
        st = dia_fail(DIA_ERR_BAD_MODEL, "%s: decoder max_position_embeddings %d too small for the delay pattern", what,
                      c->max_frames);
        goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}
