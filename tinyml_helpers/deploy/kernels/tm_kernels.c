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

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#define TM_SAT8(v) ((int8_t)__ssat((v), 8))
#else
#define TM_SAT8(v) tm_saturate((v), -128, 127)
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TM_SMLABB(a, b, acc) __smlabb((a), (b), (acc))
#define TM_SSUB16(a, b) ((uint32_t)__ssub16((a), (b)))
#define TM_SMLATT(a, b, acc) __smlatt((a), (b), (acc))
#else
#define TM_SMLABB(a, b, acc) ((acc) + (int32_t)(int16_t)((a) & 0xFFFF) * (int16_t)((b) & 0xFFFF))
#define TM_SMLATT(a, b, acc) ((acc) + (int32_t)(int16_t)((a) >> 16) * (int16_t)((b) >> 16))
#define TM_SSUB16(a, b) ((uint32_t)(uint16_t)((int16_t)((a) & 0xFFFF) - (int16_t)((b) & 0xFFFF)) | \
                         ((uint32_t)(uint16_t)((int16_t)((a) >> 16) - (int16_t)((b) >> 16)) << 16))
#endif

static inline void tm_write32(void *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

/* n int8 values -> int16 (x - zp), four at a time: SXTB16 splits even/odd bytes, SSUB16
 * subtracts the zero point from both lanes, and two pack operations (PKHBT/PKHTB) restore the
 * natural order. About 2 instructions per value instead of 4-5 for a scalar loop. */
static inline void tm_widen_offset(const int8_t *src, int16_t *dst, int32_t n, uint32_t zz, int32_t zp) {
    for (int32_t i = n >> 2; i > 0; i--) {
        const uint32_t v = tm_read32(src);
        src += 4;
        const uint32_t e = TM_SSUB16(TM_SXTB16(v), zz), o = TM_SSUB16(TM_SXTB16_ROR8(v), zz);
        tm_write32(dst, (e & 0xFFFFu) | (o << 16));
        tm_write32(dst + 2, (o & 0xFFFF0000u) | (e >> 16));
        dst += 4;
    }
    for (int32_t i = n & 3; i > 0; i--) *dst++ = (int16_t)(*src++ - zp);
}

/* im2col for one output pixel: the receptive field as int16 (x - zp_x), zeros for padding. */
static void tm_im2col(const tm_conv_params *p, const int8_t *in, int32_t iy0, int32_t ix0, int16_t *col) {
    const int32_t c = p->in_c, zp = p->in_zp;
    const uint32_t zz = ((uint32_t)(uint16_t)zp << 16) | (uint16_t)zp;
    for (int32_t ky = 0; ky < p->kh; ky++) {
        const int32_t iy = iy0 + ky * p->dh;
        for (int32_t kx = 0; kx < p->kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                for (int32_t i = 0; i < c; i++) col[i] = 0;
            } else {
                tm_widen_offset(in + (iy * p->in_w + ix) * c, col, c, zz, zp);
            }
            col += c;
        }
    }
}

void tm_conv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *col) {
    /* Weights are stored with each group of 4 along K permuted to (w0, w2, w1, w3), so that
     * SXTB16 yields the pair (w0, w1) and SXTB16 ROR 8 the pair (w2, w3), matching the
     * im2col buffer's natural int16 pairs: two MACs per SMLAD, no shuffling in the loop.
     * Two output channels share each load of the im2col buffer. */
    const int32_t K = p->kh * p->kw * p->in_c, K4 = K >> 2, Kt = K & 3, cout = p->out_c;
    const int32_t zp_out = p->out_zp;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            tm_im2col(p, in, oy * p->sh - p->pad_top, ox * p->sw - p->pad_left, col);
            const int8_t *w0 = w;
            int32_t co = 0;
            for (; co + 1 < cout; co += 2) {
                const int8_t *w1 = w0 + K;
                const int16_t *cp = col;
                int32_t a0 = bias[co], a1 = bias[co + 1];
#if defined(__clang__)
#pragma clang loop unroll_count(2)
#endif
                for (int32_t k = K4; k > 0; k--) {
                    const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
                    const uint32_t wa = tm_read32(w0), wb = tm_read32(w1);
                    cp += 4; w0 += 4; w1 += 4;
                    a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
                    a1 = TM_SMLAD(TM_SXTB16(wb), x01, a1);
                    a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
                    a1 = TM_SMLAD(TM_SXTB16_ROR8(wb), x23, a1);
                }
                for (int32_t k = Kt; k > 0; k--) {
                    a0 += (int32_t)(*w0++) * *cp;
                    a1 += (int32_t)(*w1++) * *cp++;
                }
                out[co] = TM_SAT8(zp_out + tm_requantize(a0, mult[co], shift[co]));
                out[co + 1] = TM_SAT8(zp_out + tm_requantize(a1, mult[co + 1], shift[co + 1]));
                w0 = w1;
            }
            if (co < cout) {
                const int16_t *cp = col;
                int32_t a0 = bias[co];
                for (int32_t k = K4; k > 0; k--) {
                    const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
                    const uint32_t wa = tm_read32(w0);
                    cp += 4; w0 += 4;
                    a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
                    a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
                }
                for (int32_t k = Kt; k > 0; k--) a0 += (int32_t)(*w0++) * *cp++;
                out[co] = TM_SAT8(zp_out + tm_requantize(a0, mult[co], shift[co]));
            }
            out += cout;
        }
    }
}

/* One output pixel of a depthwise conv over the valid taps [ky0, ky1) x [kx0, kx1).
 * Four channels at a time: one word of input and one of weights per tap, split into
 * even/odd int16 lanes by SXTB16 and multiplied lane by lane (SMLABB/SMLATT). Inside the
 * image (SUB_ZP = 0) the input zero point is already folded into the bias; at the border it
 * is subtracted from both lanes with one SSUB16. */
#define TM_DW_PIXEL(SUB_ZP)                                                                     \
    do {                                                                                        \
        int32_t c = 0;                                                                          \
        for (; c + 4 <= C; c += 4) {                                                            \
            int32_t a0 = b[c], a1 = b[c + 1], a2 = b[c + 2], a3 = b[c + 3];                     \
            for (int32_t ky = ky0; ky < ky1; ky++) {                                            \
                const int8_t *x = base + ky * row + kx0 * step + c;                             \
                const int8_t *k = w + (ky * kw + kx0) * C + c;                                  \
                for (int32_t kx = kx0; kx < kx1; kx++) {                                        \
                    const uint32_t xv = tm_read32(x), wv = tm_read32(k);                        \
                    x += step; k += C;                                                          \
                    uint32_t xe = TM_SXTB16(xv), xo = TM_SXTB16_ROR8(xv);                       \
                    const uint32_t we = TM_SXTB16(wv), wo = TM_SXTB16_ROR8(wv);                 \
                    if (SUB_ZP) { xe = TM_SSUB16(xe, zz); xo = TM_SSUB16(xo, zz); }            \
                    a0 = TM_SMLABB(xe, we, a0);                                                 \
                    a2 = TM_SMLATT(xe, we, a2);                                                 \
                    a1 = TM_SMLABB(xo, wo, a1);                                                 \
                    a3 = TM_SMLATT(xo, wo, a3);                                                 \
                }                                                                               \
            }                                                                                   \
            out[c] = TM_SAT8(zp_out + tm_requantize(a0, mult[c], shift[c]));                   \
            out[c + 1] = TM_SAT8(zp_out + tm_requantize(a1, mult[c + 1], shift[c + 1]));       \
            out[c + 2] = TM_SAT8(zp_out + tm_requantize(a2, mult[c + 2], shift[c + 2]));       \
            out[c + 3] = TM_SAT8(zp_out + tm_requantize(a3, mult[c + 3], shift[c + 3]));       \
        }                                                                                       \
        for (; c < C; c++) {                                                                    \
            int32_t acc = b[c];                                                                 \
            for (int32_t ky = ky0; ky < ky1; ky++)                                              \
                for (int32_t kx = kx0; kx < kx1; kx++)                                          \
                    acc += (base[ky * row + kx * step + c] - (SUB_ZP ? zp : 0)) *               \
                           w[(ky * kw + kx) * C + c];                                           \
            out[c] = TM_SAT8(zp_out + tm_requantize(acc, mult[c], shift[c]));                   \
        }                                                                                       \
    } while (0)

#define TM_DW_PIXEL_3x3()                                                                       \
    do {                                                                                        \
        const int32_t ky0 = 0, ky1 = 3, kx0 = 0, kx1 = 3, kw = 3;                               \
        TM_DW_PIXEL(0);                                                                         \
    } while (0)

void tm_dwconv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                 const int32_t *bias_zp, const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t C = p->in_c, kh = p->kh, kw = p->kw, zp = p->in_zp, dh = p->dh, dw = p->dw;
    const int32_t zp_out = p->out_zp;
    const int32_t row = p->in_w * C * dh, step = C * dw;
    const uint32_t zz = ((uint32_t)(uint16_t)zp << 16) | (uint16_t)zp;
    (void)zz;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->sh - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? (-iy0 + dh - 1) / dh : 0;
        const int32_t kyn = (p->in_h - iy0 + dh - 1) / dh, ky1 = kyn < kh ? kyn : kh;
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->sw - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? (-ix0 + dw - 1) / dw : 0;
            const int32_t kxn = (p->in_w - ix0 + dw - 1) / dw, kx1 = kxn < kw ? kxn : kw;
            const int8_t *base = in + (iy0 * p->in_w + ix0) * C;
            if (kh == 3 && kw == 3 && ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                /* The common 3x3 interior case with constant bounds, so the taps unroll. */
                const int32_t *b = bias_zp;
                TM_DW_PIXEL_3x3();
            } else if (ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw) {
                const int32_t *b = bias_zp;
                TM_DW_PIXEL(0);
            } else {
                const int32_t *b = bias;
                TM_DW_PIXEL(1);
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
