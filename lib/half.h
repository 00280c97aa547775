/* half.h - scalar float conversions on the host: f16 and bf16 bit patterns to f32, and f32 to bf16
 * rounded to nearest even. Inline, because the CPU backend converts weights with them in its
 * loops; the loaders and the KV-cache reader use the same definitions. */
#ifndef DIA_HALF_H
#define DIA_HALF_H

#include <stdint.h>
#include <string.h>

static inline float dia_bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float dia_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) man <<= 1, exp--;
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f32 -> bf16 bits, round to nearest even (finite values) */
static inline uint16_t dia_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

#endif
