/* int8 inference kernels for the course's Cortex-M4 firmware (written for this course; see
 * tm_kernels.h for the conventions). They also compile for the host with any C99 compiler:
 * the DSP intrinsics fall back to portable C, so the unit tests can check them quickly. */
#include "tm_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TM_SMLAD(a, b, acc) __smlad((a), (b), (acc))
#define TM_SXTB16(x) __sxtb16(x)
#define TM_SXTB16_ROR8(x) __sxtb16(__ror((x), 8))
#else
static inline uint32_t tm_sxtb16_c(uint32_t x) {
    return (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFF) |
           ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFF) << 16);
}
static inline int32_t tm_smlad_c(uint32_t a, uint32_t b, int32_t acc) {
    return acc + (int32_t)(int16_t)(a & 0xFFFF) * (int16_t)(b & 0xFFFF) +
           (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
}
#define TM_SMLAD(a, b, acc) tm_smlad_c((a), (b), (acc))
#define TM_SXTB16(x) tm_sxtb16_c(x)
#define TM_SXTB16_ROR8(x) tm_sxtb16_c(((x) >> 8) | ((x) << 24))
#endif

/* Unaligned 32-bit read: one LDR on a Cortex-M4 (which allows unaligned word loads). */
static inline uint32_t tm_read32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static inline int8_t tm_saturate(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* im2col for one output pixel: the receptive field as int16 (x - zp_x), zeros for padding. */
static void tm_im2col(const tm_conv_params *p, const int8_t *in, int32_t iy0, int32_t ix0, int16_t *col) {
    const int32_t c = p->in_c, zp = p->in_zp;
    for (int32_t ky = 0; ky < p->kh; ky++) {
        const int32_t iy = iy0 + ky * p->dh;
        for (int32_t kx = 0; kx < p->kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                for (int32_t i = 0; i < c; i++) col[i] = 0;
            } else {
                const int8_t *src = in + (iy * p->in_w + ix) * c;
                for (int32_t i = 0; i < c; i++) col[i] = (int16_t)(src[i] - zp);
            }
            col += c;
        }
    }
}

void tm_conv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *col) {
    /* Weights are stored with each group of 4 along K permuted to (w0, w2, w1, w3), so that
     * SXTB16 yields the pair (w0, w1) and SXTB16 ROR 8 the pair (w2, w3), matching the
     * im2col buffer's natural int16 pairs: two MACs per SMLAD, no shuffling in the loop. */
    const int32_t K = p->kh * p->kw * p->in_c, K4 = K & ~3, cout = p->out_c;
    const int32_t zp_out = p->out_zp, lo = p->act_min, hi = p->act_max;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            tm_im2col(p, in, oy * p->sh - p->pad_top, ox * p->sw - p->pad_left, col);
            int32_t co = 0;
            for (; co + 1 < cout; co += 2) {
                const int8_t *w0 = w + co * K, *w1 = w0 + K;
                const int16_t *cp = col;
                int32_t a0 = bias[co], a1 = bias[co + 1];
                for (int32_t k = 0; k < K4; k += 4) {
                    const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
                    const uint32_t wa = tm_read32(w0), wb = tm_read32(w1);
                    cp += 4; w0 += 4; w1 += 4;
                    a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
                    a1 = TM_SMLAD(TM_SXTB16(wb), x01, a1);
                    a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
                    a1 = TM_SMLAD(TM_SXTB16_ROR8(wb), x23, a1);
                }
                for (int32_t k = K4; k < K; k++) {
                    a0 += (int32_t)(*w0++) * *cp;
                    a1 += (int32_t)(*w1++) * *cp++;
                }
                out[co] = tm_saturate(zp_out + tm_requantize(a0, mult[co], shift[co]), lo, hi);
                out[co + 1] = tm_saturate(zp_out + tm_requantize(a1, mult[co + 1], shift[co + 1]), lo, hi);
            }
            for (; co < cout; co++) {
                const int8_t *w0 = w + co * K;
                const int16_t *cp = col;
                int32_t a0 = bias[co];
                for (int32_t k = 0; k < K4; k += 4) {
                    const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
                    const uint32_t wa = tm_read32(w0);
                    cp += 4; w0 += 4;
                    a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
                    a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
                }
                for (int32_t k = K4; k < K; k++) a0 += (int32_t)(*w0++) * *cp++;
                out[co] = tm_saturate(zp_out + tm_requantize(a0, mult[co], shift[co]), lo, hi);
            }
            out += cout;
        }
    }
}

void tm_dwconv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                 const int32_t *bias_zp, const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t C = p->in_c, kh = p->kh, kw = p->kw, zp = p->in_zp;
    const int32_t zp_out = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t row = p->in_w * C * p->dh, step = C * p->dw;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->sh - p->pad_top;
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->sw - p->pad_left;
            const int inside = iy0 >= 0 && ix0 >= 0 && iy0 + (kh - 1) * p->dh < p->in_h &&
                               ix0 + (kw - 1) * p->dw < p->in_w;
            const int8_t *base = in + (iy0 * p->in_w + ix0) * C;
            if (inside && kh == 3 && kw == 3) {
                /* The common case, unrolled: 9 taps, the zero point folded into bias_zp. */
                for (int32_t c = 0; c < C; c++) {
                    const int8_t *x = base + c, *k = w + c;
                    int32_t acc = bias_zp[c];
                    acc += x[0] * k[0] + x[step] * k[C] + x[2 * step] * k[2 * C];
                    x += row;
                    acc += x[0] * k[3 * C] + x[step] * k[4 * C] + x[2 * step] * k[5 * C];
                    x += row;
                    acc += x[0] * k[6 * C] + x[step] * k[7 * C] + x[2 * step] * k[8 * C];
                    out[c] = tm_saturate(zp_out + tm_requantize(acc, mult[c], shift[c]), lo, hi);
                }
            } else if (inside) {
                for (int32_t c = 0; c < C; c++) {
                    int32_t acc = bias_zp[c];
                    for (int32_t ky = 0; ky < kh; ky++)
                        for (int32_t kx = 0; kx < kw; kx++)
                            acc += base[ky * row + kx * step + c] * w[(ky * kw + kx) * C + c];
                    out[c] = tm_saturate(zp_out + tm_requantize(acc, mult[c], shift[c]), lo, hi);
                }
            } else {
                for (int32_t c = 0; c < C; c++) {
                    int32_t acc = bias[c];
                    for (int32_t ky = 0; ky < kh; ky++) {
                        const int32_t iy = iy0 + ky * p->dh;
                        if (iy < 0 || iy >= p->in_h) continue;
                        for (int32_t kx = 0; kx < kw; kx++) {
                            const int32_t ix = ix0 + kx * p->dw;
                            if (ix < 0 || ix >= p->in_w) continue;
                            acc += (in[(iy * p->in_w + ix) * C + c] - zp) * w[(ky * kw + kx) * C + c];
                        }
                    }
                    out[c] = tm_saturate(zp_out + tm_requantize(acc, mult[c], shift[c]), lo, hi);
                }
            }
            out += C;
        }
    }
}

void tm_add(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, int32_t zp_a, int32_t zp_b,
            int32_t mult_a, int32_t mult_b, int32_t shift, int32_t zp_out, int32_t act_min, int32_t act_max) {
    const int64_t half = (int64_t)1 << (shift - 1);
    for (int32_t i = 0; i < n; i++) {
        const int64_t acc = (int64_t)(a[i] - zp_a) * mult_a + (int64_t)(b[i] - zp_b) * mult_b + half;
        out[i] = tm_saturate(zp_out + (int32_t)(acc >> shift), act_min, act_max);
    }
}

void tm_global_avgpool(const int8_t *in, int8_t *out, int32_t hw, int32_t c, int32_t zp_in,
                       int32_t mult, int32_t shift, int32_t zp_out) {
    for (int32_t ch = 0; ch < c; ch++) {
        int32_t sum = -zp_in * hw;
        const int8_t *x = in + ch;
        for (int32_t i = 0; i < hw; i++, x += c) sum += *x;
        out[ch] = tm_saturate(zp_out + tm_requantize(sum, mult, shift), -128, 127);
    }
}

void tm_maxpool2d(const int8_t *in, int8_t *out, int32_t in_h, int32_t in_w, int32_t c, int32_t out_h,
                  int32_t out_w, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pad_top, int32_t pad_left) {
    for (int32_t oy = 0; oy < out_h; oy++)
        for (int32_t ox = 0; ox < out_w; ox++)
            for (int32_t ch = 0; ch < c; ch++) {
                int32_t best = -128;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * sh - pad_top + ky;
                    if (iy < 0 || iy >= in_h) continue;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int32_t ix = ox * sw - pad_left + kx;
                        if (ix < 0 || ix >= in_w) continue;
                        const int32_t v = in[(iy * in_w + ix) * c + ch];
                        if (v > best) best = v;
                    }
                }
                *out++ = (int8_t)best;
            }
}

void tm_pad2d(const int8_t *in, int8_t *out, int32_t in_h, int32_t in_w, int32_t c, int32_t top,
              int32_t bottom, int32_t left, int32_t right, int8_t value) {
    const int32_t out_w = in_w + left + right, out_h = in_h + top + bottom;
    for (int32_t y = 0; y < out_h; y++)
        for (int32_t x = 0; x < out_w; x++) {
            const int32_t iy = y - top, ix = x - left;
            const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            for (int32_t ch = 0; ch < c; ch++)
                *out++ = inside ? in[(iy * in_w + ix) * c + ch] : value;
        }
}

void tm_clamp(const int8_t *in, int8_t *out, int32_t n, int32_t lo, int32_t hi) {
    for (int32_t i = 0; i < n; i++) out[i] = tm_saturate(in[i], lo, hi);
}

#if !defined(TM_HOST_BUILD)
/* The compiler may turn struct copies and loops into calls to these; no libc here. */
void *memcpy(void *dst, const void *src, unsigned int n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int v, unsigned int n) {
    uint8_t *d = (uint8_t *)dst;
    while (n--) *d++ = (uint8_t)v;
    return dst;
}
#endif
