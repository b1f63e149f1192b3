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
#define TM_SMLABT(a, b, acc) __smlabt((a), (b), (acc))
#define TM_SMLATB(a, b, acc) __smlatb((a), (b), (acc))
#else
#define TM_SMLABB(a, b, acc) ((acc) + (int32_t)(int16_t)((a) & 0xFFFF) * (int16_t)((b) & 0xFFFF))
#define TM_SMLATT(a, b, acc) ((acc) + (int32_t)(int16_t)((a) >> 16) * (int16_t)((b) >> 16))
#define TM_SMLABT(a, b, acc) ((acc) + (int32_t)(int16_t)((a) & 0xFFFF) * (int16_t)((b) >> 16))
#define TM_SMLATB(a, b, acc) ((acc) + (int32_t)(int16_t)((a) >> 16) * (int16_t)((b) & 0xFFFF))
#define TM_SSUB16(a, b) ((uint32_t)(uint16_t)((int16_t)((a) & 0xFFFF) - (int16_t)((b) & 0xFFFF)) | \
                         ((uint32_t)(uint16_t)((int16_t)((a) >> 16) - (int16_t)((b) >> 16)) << 16))
#endif

/* Per-channel requantization of an accumulator. With shift == NULL the layer uses onnxruntime's
 * arithmetic instead of the fixed-point one: `mult` then holds float32 scales (bit patterns)
 * and the result is round_half_even(float(acc) * scale), bit-exact with onnxruntime. */
/* round_half_even(v) of a float32 (VCVTR with the reset FPSCR mode on the Cortex-M4F). */
static inline int32_t tm_round_even_f32(float v) {
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
    float as_int;
    int32_t r;
    __asm("vcvtr.s32.f32 %0, %1" : "=t"(as_int) : "t"(v));
    __builtin_memcpy(&r, &as_int, 4);
    return r;
#else
    return (int32_t)__builtin_rintf(v);
#endif
}

static inline int32_t tm_requantize_float(int32_t acc, int32_t scale_bits) {
    float scale;
    __builtin_memcpy(&scale, &scale_bits, 4);
    return tm_round_even_f32((float)acc * scale);
}
#define TM_RQ(acc, c) (shift ? tm_requantize((acc), mult[c], shift[c]) : tm_requantize_float((acc), mult[c]))

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

/* Requantization modes of the conv and depthwise kernels, each a separate copy of their loops so
 * that no pixel pays for the choice: onnxruntime's float rescale, fixed point with a shift > 32 (the
 * usual case: one SMMUL and three ALU instructions) and the general fixed point. */
enum { TM_RQ_FLOAT = 0, TM_RQ_FIXED_HI = 1, TM_RQ_FIXED = 2 };

static inline __attribute__((always_inline)) int8_t tm_dw_out(int32_t acc, int32_t zp_out, int32_t m, int32_t sh,
                                                              float scale, int mode) {
    int32_t r;
    if (mode == TM_RQ_FLOAT) {
        const float prod = (float)acc * scale;
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
        float as_int;
        __asm("vcvtr.s32.f32 %0, %1" : "=t"(as_int) : "t"(prod));
        __builtin_memcpy(&r, &as_int, 4);
#else
        r = (int32_t)__builtin_rintf(prod);
#endif
    } else if (mode == TM_RQ_FIXED_HI) {
        const int32_t hi = (int32_t)(((int64_t)acc * (int64_t)m) >> 32);
        r = ((hi >> (sh - 33)) + 1) >> 1;
    } else {
        r = tm_requantize(acc, m, sh);
    }
    return TM_SAT8(zp_out + r);
}

/* im2col for one output pixel: the receptive field as int16 (x - zp_x), zeros for padding. A
 * kernel row that lies inside the image with dilation 1 is one contiguous run of kw * C input
 * values (channels-last), widened in one call: a one-channel first layer then pays per row,
 * not per tap. */
static void tm_im2col(const tm_conv_params *p, const int8_t *in, int32_t iy0, int32_t ix0, int16_t *col) {
    const int32_t c = p->in_c, zp = p->in_zp, kw = p->kw;
    const uint32_t zz = ((uint32_t)(uint16_t)zp << 16) | (uint16_t)zp;
    const int row_inside = p->dw == 1 && ix0 >= 0 && ix0 + kw <= p->in_w;
    for (int32_t ky = 0; ky < p->kh; ky++) {
        const int32_t iy = iy0 + ky * p->dh;
        if (iy < 0 || iy >= p->in_h) {
            for (int32_t i = 0; i < kw * c; i++) col[i] = 0;
            col += kw * c;
            continue;
        }
        if (row_inside) {
            tm_widen_offset(in + (iy * p->in_w + ix0) * c, col, kw * c, zz, zp);
            col += kw * c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (ix < 0 || ix >= p->in_w) {
                for (int32_t i = 0; i < c; i++) col[i] = 0;
            } else {
                tm_widen_offset(in + (iy * p->in_w + ix) * c, col, c, zz, zp);
            }
            col += c;
        }
    }
    /* the rows are padded to a multiple of 4 (codegen.pack_conv_weights): zeros meet zeros */
    for (int32_t k = (p->kh * p->kw * c) & 3; k && k < 4; k++) *col++ = 0;
}

/* Weight layout (see codegen.pack_conv_weights): output channels in pairs; a pair's block
 * interleaves the two rows in groups of 4 along K (4 bytes of channel c, 4 of channel c+1,
 * ...), each group permuted to (w0, w2, w1, w3) so that SXTB16 yields the int16 pair (w0, w1)
 * and SXTB16 ROR 8 the pair (w2, w3), matching the im2col buffer's natural order; then the
 * K % 4 tail of c, then of c+1. An odd last channel is a plain (permuted) row. */

/* One output pixel, all channels: two channels share each load of the im2col buffer. */
static void tm_conv_pixel(const int16_t *col, int32_t K, int32_t cout, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int32_t zp_out, int8_t *out) {
    const int32_t K4 = K >> 2, Kt = K & 3;
    const int8_t *wp = w;
    int32_t co = 0;
    for (; co + 1 < cout; co += 2) {
        const int16_t *cp = col;
        int32_t a0 = bias[co], a1 = bias[co + 1];
        for (int32_t k = K4; k > 0; k--) {
            const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
            const uint32_t wa = tm_read32(wp), wb = tm_read32(wp + 4);
            cp += 4; wp += 8;
            a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
            a1 = TM_SMLAD(TM_SXTB16(wb), x01, a1);
            a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
            a1 = TM_SMLAD(TM_SXTB16_ROR8(wb), x23, a1);
        }
        for (int32_t k = 0; k < Kt; k++) {
            a0 += (int32_t)wp[k] * cp[k];
            a1 += (int32_t)wp[Kt + k] * cp[k];
        }
        wp += 2 * Kt;
        out[co] = TM_SAT8(zp_out + TM_RQ(a0, co));
        out[co + 1] = TM_SAT8(zp_out + TM_RQ(a1, co + 1));
    }
    if (co < cout) {
        const int16_t *cp = col;
        int32_t a0 = bias[co];
        for (int32_t k = K4; k > 0; k--) {
            const uint32_t x01 = tm_read32(cp), x23 = tm_read32(cp + 2);
            const uint32_t wa = tm_read32(wp);
            cp += 4; wp += 4;
            a0 = TM_SMLAD(TM_SXTB16(wa), x01, a0);
            a0 = TM_SMLAD(TM_SXTB16_ROR8(wa), x23, a0);
        }
        for (int32_t k = Kt; k > 0; k--) a0 += (int32_t)(*wp++) * *cp++;
        out[co] = TM_SAT8(zp_out + TM_RQ(a0, co));
    }
}

/* 16 MACs of the pixel pair x channel pair loop (see tm_conv_pixel_pair): 15 instructions.
 * LDRD brings two words in one instruction (weights: 8 bytes of the channel pair; im2col: 4
 * int16 of one pixel); it needs word-aligned addresses, which codegen guarantees (aligned
 * weight arrays, rows padded to a multiple of 4, an 8-byte aligned im2col buffer). */
#define TM_PAIR_BODY                              \
    "ldrd   %[t0], %[t1], [%[wp]], #8\n\t"       \
    "sxtb16 %[t2], %[t0]\n\t"                    \
    "sxtb16 %[t0], %[t0], ror #8\n\t"            \
    "sxtb16 %[t3], %[t1]\n\t"                    \
    "sxtb16 %[t1], %[t1], ror #8\n\t"            \
    "ldrd   %[x], %[y], [%[c0]], #8\n\t"         \
    "smlad  %[a00], %[t2], %[x], %[a00]\n\t"     \
    "smlad  %[a01], %[t3], %[x], %[a01]\n\t"     \
    "smlad  %[a00], %[t0], %[y], %[a00]\n\t"     \
    "smlad  %[a01], %[t1], %[y], %[a01]\n\t"     \
    "ldrd   %[x], %[y], [%[c1]], #8\n\t"         \
    "smlad  %[a10], %[t2], %[x], %[a10]\n\t"     \
    "smlad  %[a11], %[t3], %[x], %[a11]\n\t"     \
    "smlad  %[a10], %[t0], %[y], %[a10]\n\t"     \
    "smlad  %[a11], %[t1], %[y], %[a11]\n\t"

/* The K4 groups of 4 MACs of one pixel pair x channel pair: one TM_PAIR_BODY when K4 is odd,
 * then the body unrolled twice (one loop branch per 32 MACs), hand-scheduled at 15
 * instructions per 16 MACs in the 14 allocatable registers. Written once for both callers
 * (tm_conv_pixel_pair_body and tm_conv_pairs_k4_float). A macro, not an inline function: it
 * works on the caller's own locals (wp, c0, c1 and a00..a11, which it advances and
 * accumulates), so the compiler sees exactly the code it saw when the loop was written out
 * twice; an always-inline helper taking pointers to them compiled to 4-20 bytes more per
 * caller and a different register allocation. The float-rescale block over all channel pairs
 * (TM_PAIRS_ASM) runs the same TM_PAIR_BODY inside its own loop, which also holds the rescale. */
#define TM_PAIR_MACS(K4)                                                                              \
    do {                                                                                              \
        int32_t n = (K4) >> 1;                                                                        \
        uint32_t t0, t1, t2, t3, x, y;                                                                \
        if ((K4) & 1) {                                                                               \
            __asm volatile(TM_PAIR_BODY                                                               \
                : [wp] "+r"(wp), [c0] "+r"(c0), [c1] "+r"(c1), [a00] "+r"(a00), [a01] "+r"(a01),      \
                  [a10] "+r"(a10), [a11] "+r"(a11), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2),   \
                  [t3] "=&r"(t3), [x] "=&r"(x), [y] "=&r"(y)                                          \
                :                                                                                     \
                : "memory");                                                                          \
        }                                                                                             \
        if (n > 0) {                                                                                  \
            __asm volatile(                                                                           \
                "1:\n\t" TM_PAIR_BODY TM_PAIR_BODY                                                      \
                "subs   %[n], %[n], #1\n\t"                                                           \
                "bne    1b\n\t"                                                                       \
                : [wp] "+r"(wp), [c0] "+r"(c0), [c1] "+r"(c1), [n] "+r"(n), [a00] "+r"(a00),          \
                  [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [t0] "=&r"(t0), [t1] "=&r"(t1),  \
                  [t2] "=&r"(t2), [t3] "=&r"(t3), [x] "=&r"(x), [y] "=&r"(y)                          \
                :                                                                                     \
                : "cc", "memory");                                                                    \
        }                                                                                             \
    } while (0)

/* Two output pixels x two output channels per pass (as CMSIS-NN does): every weight word
 * loaded and unpacked once feeds four SMLADs, every im2col word two. `mode` is a constant at
 * each use (one out-of-line copy per requantization mode below), so the per-output rescale
 * carries no branch. */
static inline __attribute__((always_inline)) void tm_conv_pixel_pair_body(
        const int16_t *col0, const int16_t *col1, int32_t K, int32_t cout, const int8_t *w, const int32_t *bias,
        const int32_t *mult, const int32_t *shift, int32_t zp_out, int8_t *out0, int8_t *out1, int mode) {
    const int32_t K4 = K >> 2, Kt = K & 3;
    const int8_t *wp = w;
    int32_t co = 0;
    for (; co + 1 < cout; co += 2) {
        const int16_t *c0 = col0, *c1 = col1;
        int32_t a00 = bias[co], a01 = bias[co + 1], a10 = a00, a11 = a01;
        if (K4 > 0) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
            TM_PAIR_MACS(K4);
#else
            for (int32_t k = K4; k > 0; k--) {
                const uint32_t wa = tm_read32(wp), wb = tm_read32(wp + 4);
                wp += 8;
                const uint32_t wa_lo = TM_SXTB16(wa), wa_hi = TM_SXTB16_ROR8(wa);
                const uint32_t wb_lo = TM_SXTB16(wb), wb_hi = TM_SXTB16_ROR8(wb);
                uint32_t x01 = tm_read32(c0), x23 = tm_read32(c0 + 2);
                c0 += 4;
                a00 = TM_SMLAD(wa_lo, x01, a00);
                a01 = TM_SMLAD(wb_lo, x01, a01);
                a00 = TM_SMLAD(wa_hi, x23, a00);
                a01 = TM_SMLAD(wb_hi, x23, a01);
                x01 = tm_read32(c1); x23 = tm_read32(c1 + 2);
                c1 += 4;
                a10 = TM_SMLAD(wa_lo, x01, a10);
                a11 = TM_SMLAD(wb_lo, x01, a11);
                a10 = TM_SMLAD(wa_hi, x23, a10);
                a11 = TM_SMLAD(wb_hi, x23, a11);
            }
#endif
        }
        for (int32_t k = 0; k < Kt; k++) {
            const int32_t va = wp[k], vb = wp[Kt + k], x0 = c0[k], x1 = c1[k];
            a00 += va * x0; a01 += vb * x0; a10 += va * x1; a11 += vb * x1;
        }
        wp += 2 * Kt;
        float s0 = 0.0f, s1 = 0.0f;
        int32_t m0 = 0, m1 = 0, h0 = 0, h1 = 0;
        if (mode == TM_RQ_FLOAT) {
            __builtin_memcpy(&s0, &mult[co], 4);
            __builtin_memcpy(&s1, &mult[co + 1], 4);
        } else {
            m0 = mult[co]; m1 = mult[co + 1]; h0 = shift[co]; h1 = shift[co + 1];
        }
        out0[co] = tm_dw_out(a00, zp_out, m0, h0, s0, mode);
        out0[co + 1] = tm_dw_out(a01, zp_out, m1, h1, s1, mode);
        out1[co] = tm_dw_out(a10, zp_out, m0, h0, s0, mode);
        out1[co + 1] = tm_dw_out(a11, zp_out, m1, h1, s1, mode);
    }
    if (co < cout) {  /* odd channel count: the last channel (a plain row) for both pixels */
        const int32_t *sh = shift ? shift + co : 0;
        tm_conv_pixel(col0, K, 1, wp, bias + co, mult + co, sh, zp_out, out0 + co);
        tm_conv_pixel(col1, K, 1, wp, bias + co, mult + co, sh, zp_out, out1 + co);
    }
}

static __attribute__((noinline)) void tm_conv_pixel_pair_float(
        const int16_t *col0, const int16_t *col1, int32_t K, int32_t cout, const int8_t *w, const int32_t *bias,
        const int32_t *mult, int32_t zp_out, int8_t *out0, int8_t *out1) {
    tm_conv_pixel_pair_body(col0, col1, K, cout, w, bias, mult, 0, zp_out, out0, out1, TM_RQ_FLOAT);
}

static __attribute__((noinline)) void tm_conv_pixel_pair_fixed(
        const int16_t *col0, const int16_t *col1, int32_t K, int32_t cout, const int8_t *w, const int32_t *bias,
        const int32_t *mult, const int32_t *shift, int32_t zp_out, int8_t *out0, int8_t *out1) {
    tm_conv_pixel_pair_body(col0, col1, K, cout, w, bias, mult, shift, zp_out, out0, out1, TM_RQ_FIXED);
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* The common case of the pass above with K a multiple of 4, the float rescale and only the
 * channel pairs: few values live across the loop (the compiler otherwise reloads a dozen
 * of them from the stack on every pass, as much as the MACs of a small layer cost). */
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
/* The rest of one channel pair's pass, after its MACs (a00, a01: pixel 0; a10, a11: pixel 1):
 * the float rescale two accumulators per VMOV (s12..s15; the pair's two scales in s8, s9, one
 * VLDM), the output zero point, saturation and four byte stores. `k` points at the context
 * array (see tm_conv_pairs_asm); 40 instructions for four outputs, where the compiled epilogue
 * with its reloads took ~75. */
#define TM_PAIR_EPILOGUE                                                                           \
    "ldr %[k], [sp]\n\t"                                                                           \
    "ldr %[x], [%[k], #4]\n\tvldmia %[x]!, {s8, s9}\n\tstr %[x], [%[k], #4]\n\t"                  \
    "vmov s12, s13, %[a00], %[a01]\n\tvmov s14, s15, %[a10], %[a11]\n\t"                           \
    "vcvt.f32.s32 s12, s12\n\tvcvt.f32.s32 s13, s13\n\tvcvt.f32.s32 s14, s14\n\tvcvt.f32.s32 s15, s15\n\t" \
    "vmul.f32 s12, s12, s8\n\tvmul.f32 s13, s13, s9\n\tvmul.f32 s14, s14, s8\n\tvmul.f32 s15, s15, s9\n\t" \
    "vcvtr.s32.f32 s12, s12\n\tvcvtr.s32.f32 s13, s13\n\tvcvtr.s32.f32 s14, s14\n\tvcvtr.s32.f32 s15, s15\n\t" \
    "vmov %[a00], %[a01], s12, s13\n\tvmov %[a10], %[a11], s14, s15\n\t"                           \
    "ldr %[x], [%[k], #20]\n\t"                                                                    \
    "add %[a00], %[a00], %[x]\n\tssat %[a00], #8, %[a00]\n\tadd %[a01], %[a01], %[x]\n\tssat %[a01], #8, %[a01]\n\t" \
    "add %[a10], %[a10], %[x]\n\tssat %[a10], #8, %[a10]\n\tadd %[a11], %[a11], %[x]\n\tssat %[a11], #8, %[a11]\n\t" \
    "ldrd %[x], %[y], [%[k], #24]\n\t"                                                             \
    "strb %[a00], [%[x]]\n\tstrb %[a01], [%[x], #1]\n\tstrb %[a10], [%[x], %[y]]\n\t"                \
    "add %[y], %[y], %[x]\n\tstrb %[a11], [%[y], #1]\n\t"                                          \
    "add %[x], %[x], #2\n\tstr %[x], [%[k], #24]\n\t"                                              \
    "ldr %[y], [%[k], #32]\n\tcmp %[x], %[y]\n\t"

/* Every channel pair of a pixel pair in one asm block (K4 >= 2 groups of 4 MACs; `ODD` is
 * TM_PAIR_BODY when K4 is odd, else empty). The MAC loop needs all 14 allocatable registers,
 * so the pointer to the context array -- bias and scale pointers, the two im2col rows, the
 * loop count K4 / 2, the output zero point, the output pointer, cout and where the outputs
 * end -- waits on the stack (pushed on entry, popped on exit) and `k` doubles as the count. */
#define TM_PAIRS_ASM(ODD)                                                                          \
    __asm volatile(                                                                                \
        "str %[k], [sp, #-8]!\n\t"                                                                 \
        "1:\n\t"                                                                                    \
        "ldr %[x], [%[k]]\n\tldrd %[a00], %[a01], [%[x]], #8\n\tstr %[x], [%[k]]\n\t"               \
        "mov %[a10], %[a00]\n\tmov %[a11], %[a01]\n\t"                                             \
        "ldrd %[c0], %[c1], [%[k], #8]\n\tldr %[k], [%[k], #16]\n\t"                                \
        ODD                                                                                        \
        "2:\n\t" TM_PAIR_BODY TM_PAIR_BODY "subs %[k], %[k], #1\n\tbne 2b\n\t"                        \
        TM_PAIR_EPILOGUE                                                                           \
        "bne 1b\n\t"                                                                                \
        "add sp, sp, #8\n\t"                                                                        \
        : [wp] "+r"(wp), [k] "+r"(k), [c0] "=&r"(c0), [c1] "=&r"(c1), [a00] "=&r"(a00),              \
          [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [t0] "=&r"(t0), [t1] "=&r"(t1),     \
          [t2] "=&r"(t2), [t3] "=&r"(t3), [x] "=&r"(x), [y] "=&r"(y)                                \
        :                                                                                          \
        : "cc", "memory", "s8", "s9", "s12", "s13", "s14", "s15")

static void tm_conv_pairs_asm(const int16_t *col0, const int16_t *col1, int32_t K4, int32_t pairs,
                              const int8_t *wp, const int32_t *bias, const int32_t *mult, int32_t zp_out,
                              int8_t *o, int32_t cout) {
    uint32_t ctx[9] = {(uint32_t)(uintptr_t)bias, (uint32_t)(uintptr_t)mult, (uint32_t)(uintptr_t)col0,
                       (uint32_t)(uintptr_t)col1, (uint32_t)(K4 >> 1), (uint32_t)zp_out,
                       (uint32_t)(uintptr_t)o, (uint32_t)cout, (uint32_t)(uintptr_t)(o + 2 * pairs)};
    uint32_t *k = ctx;
    const int16_t *c0, *c1;
    int32_t a00, a01, a10, a11;
    uint32_t t0, t1, t2, t3, x, y;
    if (K4 & 1) {
        TM_PAIRS_ASM(TM_PAIR_BODY);
    } else {
        TM_PAIRS_ASM("");
    }
}
#endif

#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
/* The odd last output channel (a plain weight row) for both pixels of the pair, as one asm
 * block: each weight word, loaded and split once, feeds both pixels (11 instructions per 8
 * MACs), and the two outputs share one rescale sequence. Most of PhiNet's layers have an odd
 * channel count; tm_conv_pixel once per pixel cost about twice as much. */
static void tm_conv_odd_pair_float(const int16_t *c0, const int16_t *c1, int32_t K4, const int8_t *wp,
                                   int32_t b, int32_t scale_bits, int32_t zp_out, int8_t *o0, int8_t *o1) {
    float scale;
    __builtin_memcpy(&scale, &scale_bits, 4);
    int32_t a0 = b, a1 = b, n = K4;
    uint32_t t, u, x, y;
    __asm volatile(
        "1:\n\t"
        "ldr %[t], [%[wp]], #4\n\tsxtb16 %[u], %[t]\n\tsxtb16 %[t], %[t], ror #8\n\t"  /* (w0, w1), (w2, w3) */
        "ldrd %[x], %[y], [%[c0]], #8\n\tsmlad %[a0], %[u], %[x], %[a0]\n\tsmlad %[a0], %[t], %[y], %[a0]\n\t"
        "ldrd %[x], %[y], [%[c1]], #8\n\tsmlad %[a1], %[u], %[x], %[a1]\n\tsmlad %[a1], %[t], %[y], %[a1]\n\t"
        "subs %[n], %[n], #1\n\tbne 1b\n\t"
        "vmov s12, s13, %[a0], %[a1]\n\tvcvt.f32.s32 s12, s12\n\tvcvt.f32.s32 s13, s13\n\t"
        "vmul.f32 s12, s12, %[scale]\n\tvmul.f32 s13, s13, %[scale]\n\t"
        "vcvtr.s32.f32 s12, s12\n\tvcvtr.s32.f32 s13, s13\n\tvmov %[a0], %[a1], s12, s13\n\t"
        "add %[a0], %[a0], %[zp]\n\tssat %[a0], #8, %[a0]\n\tadd %[a1], %[a1], %[zp]\n\tssat %[a1], #8, %[a1]\n\t"
        "strb %[a0], [%[o0]]\n\tstrb %[a1], [%[o1]]\n\t"
        : [wp] "+r"(wp), [c0] "+r"(c0), [c1] "+r"(c1), [n] "+r"(n), [a0] "+r"(a0), [a1] "+r"(a1), [t] "=&r"(t),
          [u] "=&r"(u), [x] "=&r"(x), [y] "=&r"(y)
        : [zp] "r"(zp_out), [o0] "r"(o0), [o1] "r"(o1), [scale] "t"(scale)
        : "cc", "memory", "s12", "s13");
}
#endif

static __attribute__((noinline)) void tm_conv_pairs_k4_float(
        const int16_t *col0, const int16_t *col1, int32_t K4, int32_t pairs, const int8_t *wp,
        const int32_t *bias, const int32_t *mult, int32_t zp_out, int8_t *o, int32_t cout) {
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
    if (K4 >= 2 && pairs > 0) {
        tm_conv_pairs_asm(col0, col1, K4, pairs, wp, bias, mult, zp_out, o, cout);
        return;
    }
#endif
    const int32_t *bend = bias + 2 * pairs;
    for (; bias < bend; bias += 2, mult += 2, o += 2) {
        const int16_t *c0 = col0, *c1 = col1;
        int32_t a00 = bias[0], a01 = bias[1], a10 = a00, a11 = a01;
        TM_PAIR_MACS(K4);
        float s0, s1;
        __builtin_memcpy(&s0, &mult[0], 4);
        __builtin_memcpy(&s1, &mult[1], 4);
        o[0] = tm_dw_out(a00, zp_out, 0, 0, s0, TM_RQ_FLOAT);
        o[1] = tm_dw_out(a01, zp_out, 0, 0, s1, TM_RQ_FLOAT);
        o[cout] = tm_dw_out(a10, zp_out, 0, 0, s0, TM_RQ_FLOAT);
        o[cout + 1] = tm_dw_out(a11, zp_out, 0, 0, s1, TM_RQ_FLOAT);
    }
}
#endif

/* A 1x1 convolution of a one-channel input (a PhiNet's first pointwise layer, after its
 * one-channel stem): each output is one MAC, w[c] * (x - zp_x) + bias[c]. The im2col and
 * channel-pair machinery built for long dot products spent ~30 instructions per MAC on it.
 * Channel by channel instead: the weight, the bias (input zero point folded in) and the scale
 * stay in registers while the loop runs over the pixels, four per pass from one word of input
 * (SXTB16 splits it into pixels (0, 2) and (1, 3), each multiplied with one SMLAxB). Weights
 * are packed as for tm_conv2d with K padded to 4, so channel c's weight is w[4 * c]. */
static void tm_conv1x1_c1(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t n = p->out_h * p->out_w, cout = p->out_c, zp_out = p->out_zp;
    for (int32_t c = 0; c < cout; c++) {
        const int32_t wc = w[4 * c], b = bias[c] - p->in_zp * wc;
        int8_t *o = out + c;
        int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FP) && !defined(TM_HOST_BUILD)
        if (!shift && n >= 4) {
            /* 39 instructions per four outputs: the rescale moves two values per VMOV (s12..s15) */
            float scale;
            __builtin_memcpy(&scale, &mult[c], 4);
            const int8_t *src = in, *end = in + (n & ~3);
            uint32_t v, e, d, t;
            __asm volatile(
                "1:\n\t"
                "ldr %[v], [%[src]], #4\n\t"
                "sxtb16 %[e], %[v]\n\tsxtb16 %[d], %[v], ror #8\n\t"
                "smlabb %[v], %[e], %[w], %[b]\n\tsmlatb %[e], %[e], %[w], %[b]\n\t"   /* pixels 0, 2 */
                "smlabb %[t], %[d], %[w], %[b]\n\tsmlatb %[d], %[d], %[w], %[b]\n\t"   /* pixels 1, 3 */
                "vmov s12, s13, %[v], %[t]\n\tvmov s14, s15, %[e], %[d]\n\t"
                "vcvt.f32.s32 s12, s12\n\tvcvt.f32.s32 s13, s13\n\tvcvt.f32.s32 s14, s14\n\tvcvt.f32.s32 s15, s15\n\t"
                "vmul.f32 s12, s12, %[scale]\n\tvmul.f32 s13, s13, %[scale]\n\t"
                "vmul.f32 s14, s14, %[scale]\n\tvmul.f32 s15, s15, %[scale]\n\t"
                "vcvtr.s32.f32 s12, s12\n\tvcvtr.s32.f32 s13, s13\n\tvcvtr.s32.f32 s14, s14\n\tvcvtr.s32.f32 s15, s15\n\t"
                "vmov %[v], %[t], s12, s13\n\tvmov %[e], %[d], s14, s15\n\t"
                "add %[v], %[v], %[zp]\n\tssat %[v], #8, %[v]\n\tadd %[t], %[t], %[zp]\n\tssat %[t], #8, %[t]\n\t"
                "add %[e], %[e], %[zp]\n\tssat %[e], #8, %[e]\n\tadd %[d], %[d], %[zp]\n\tssat %[d], #8, %[d]\n\t"
                "strb %[v], [%[o]]\n\tstrb %[t], [%[o], %[C]]\n\tadd %[o], %[o], %[C], lsl #1\n\t"
                "strb %[e], [%[o]]\n\tstrb %[d], [%[o], %[C]]\n\tadd %[o], %[o], %[C], lsl #1\n\t"
                "cmp %[src], %[end]\n\tbne 1b\n\t"
                : [src] "+r"(src), [o] "+r"(o), [v] "=&r"(v), [e] "=&r"(e), [d] "=&r"(d), [t] "=&r"(t)
                : [end] "r"(end), [w] "r"(wc), [b] "r"(b), [zp] "r"(zp_out), [C] "r"(cout), [scale] "t"(scale)
                : "cc", "memory", "s12", "s13", "s14", "s15");
            i = n & ~3;
        }
#endif
        for (o = out + i * cout + c; i < n; i++, o += cout) *o = TM_SAT8(zp_out + TM_RQ(b + wc * in[i], c));
    }
}

void tm_conv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *col) {
    if (p->kh == 1 && p->kw == 1 && p->in_c == 1 && p->sh == 1 && p->sw == 1 && p->pad_top == 0 &&
        p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w) {
        tm_conv1x1_c1(p, in, w, bias, mult, shift, out);
        return;
    }
    /* K rounded up to a multiple of 4: the weight rows and the im2col buffer carry zeros up to
     * it, so every layer runs the SIMD loop without a scalar tail. */
    const int32_t K = (p->kh * p->kw * p->in_c + 3) & ~3, cout = p->out_c, n = p->out_h * p->out_w;
    int16_t *col1 = col + ((K + 1) & ~1);  /* keep the second buffer word-aligned */
    /* A 1x1 conv at stride 1 without padding (the pointwise layers) reads each pixel's in_c
     * values as they lie, so the pixel pair is widened straight from the input, skipping
     * tm_im2col's window bookkeeping (with PhiNet's 7-15 input channels, most of the im2col
     * cost); when in_c is a multiple of 4 the two pixels are one contiguous run. */
    const int32_t cin = p->in_c, zp = p->in_zp;
    const int pointwise = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pad_top == 0 &&
                          p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w;
    const uint32_t zz = ((uint32_t)(uint16_t)zp << 16) | (uint16_t)zp;
    int32_t i = 0;
    for (; i + 1 < n; i += 2) {
        if (pointwise) {
            const int8_t *src = in + i * cin;
            if (cin == K) {
                tm_widen_offset(src, col, 2 * cin, zz, zp);
            } else {
                tm_widen_offset(src, col, cin, zz, zp);
                tm_widen_offset(src + cin, col1, cin, zz, zp);
                for (int32_t k = cin; k < K; k++) col[k] = col1[k] = 0;   /* zeros meet the zero padding */
            }
        } else {
            const int32_t oy0 = i / p->out_w, ox0 = i - oy0 * p->out_w;
            const int32_t oy1 = (i + 1) / p->out_w, ox1 = i + 1 - oy1 * p->out_w;
            tm_im2col(p, in, oy0 * p->sh - p->pad_top, ox0 * p->sw - p->pad_left, col);
            tm_im2col(p, in, oy1 * p->sh - p->pad_top, ox1 * p->sw - p->pad_left, col1);
        }
        if (shift) {
            tm_conv_pixel_pair_fixed(col, col1, K, cout, w, bias, mult, shift, p->out_zp, out, out + cout);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        } else if ((K & 3) == 0 && K > 0) {
            const int32_t pairs = cout >> 1;
            tm_conv_pairs_k4_float(col, col1, K >> 2, pairs, w, bias, mult, p->out_zp, out, cout);
            if (cout & 1) {  /* the odd last channel: a plain row after the pairs */
                const int8_t *wl = w + 2 * pairs * K;
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
                tm_conv_odd_pair_float(col, col1, K >> 2, wl, bias[cout - 1], mult[cout - 1], p->out_zp,
                                       out + cout - 1, out + 2 * cout - 1);
#else
                tm_conv_pixel(col, K, 1, wl, bias + cout - 1, mult + cout - 1, 0, p->out_zp, out + cout - 1);
                tm_conv_pixel(col1, K, 1, wl, bias + cout - 1, mult + cout - 1, 0, p->out_zp, out + 2 * cout - 1);
#endif
            }
#endif
        } else {
            tm_conv_pixel_pair_float(col, col1, K, cout, w, bias, mult, p->out_zp, out, out + cout);
        }
        out += 2 * cout;
    }
    if (i < n) {
        const int32_t oy = i / p->out_w, ox = i - oy * p->out_w;
        tm_im2col(p, in, oy * p->sh - p->pad_top, ox * p->sw - p->pad_left, col);
        tm_conv_pixel(col, K, cout, w, bias, mult, shift, p->out_zp, out);
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
            out[c] = TM_SAT8(zp_out + TM_RQ(a0, c));                   \
            out[c + 1] = TM_SAT8(zp_out + TM_RQ(a1, c + 1));       \
            out[c + 2] = TM_SAT8(zp_out + TM_RQ(a2, c + 2));       \
            out[c + 3] = TM_SAT8(zp_out + TM_RQ(a3, c + 3));       \
        }                                                                                       \
        for (; c < C; c++) {                                                                    \
            int32_t acc = b[c];                                                                 \
            for (int32_t ky = ky0; ky < ky1; ky++)                                              \
                for (int32_t kx = kx0; kx < kx1; kx++)                                          \
                    acc += (base[ky * row + kx * step + c] - (SUB_ZP ? zp : 0)) *               \
                           w[(ky * kw + kx) * C + c];                                           \
            out[c] = TM_SAT8(zp_out + TM_RQ(acc, c));                   \
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

/* ---- depthwise 3x3, channel planes (see tm_kernels.h) ----------------------------------
 * Why planes and not four channels per word: a 3x3 depthwise weight meets one input per output
 * pixel, so with channels in the SIMD lanes every tap costs a load, two SXTB16 and four
 * 16x16 MACs for 4 MACs (~2.5 instructions per MAC before requantization). In one channel's
 * int16 plane two horizontally adjacent taps are one 32-bit word, so one SMLAD does two taps,
 * and four vertically neighbouring output pixels share the rows they read: 41 instructions per
 * 36 MACs at stride 1. The widening costs ~3 instructions per input value, paid once. */

/* The padding of every channel's plane is the same (the input zero point), so it is written
 * once per layer; per channel only the input values are copied in. */
static void tm_dw_pad_plane(const tm_conv_params *p, int16_t *plane, int32_t rows, int32_t cols) {
    const uint32_t zz = ((uint32_t)(uint16_t)p->in_zp << 16) | (uint16_t)p->in_zp;
    for (int32_t i = 0; i < rows * cols; i += 2) tm_write32(plane + i, zz);  /* cols is even */
}

/* Copy channel c of the input into the interior of the plane (rows x cols, already padded). */
static void tm_dw_fill_plane(const tm_conv_params *p, const int8_t *in, int32_t c, int16_t *plane,
                             int32_t rows, int32_t cols) {
    const int32_t C = p->in_c, H = p->in_h, W = p->in_w, top = p->pad_top;
    const int32_t left = p->pad_left < cols ? p->pad_left : cols;
    const int32_t n_in = W < cols - left ? W : cols - left;   /* input columns that land in the plane */
    const int32_t y_end = H + top < rows ? H + top : rows;
    const int8_t *src_row = in + c;
    for (int32_t r = top; r < y_end; r++, src_row += W * C) {
        const int8_t *src = src_row;
        int16_t *d = plane + r * cols + left;
        int32_t n = n_in;
        for (; n >= 2; n -= 2) {  /* two per pass: halves the loop overhead */
            const int16_t a = src[0], b = src[C];
            src += 2 * C;
            d[0] = a; d[1] = b;
            d += 2;
        }
        if (n) *d = *src;
    }
}

/* One kernel row r of one output pixel: taps 0 and 1 with one SMLAD, tap 2 with a 16x16 MAC
 * (weights: w0/w1/w2 = row pairs, wt = (w02, w12), wu = (w22, 0)). */
#define TM_DW_ROW0(acc, x01, x23) do { acc = TM_SMLAD(w0, x01, acc); acc = TM_SMLABB(wt, x23, acc); } while (0)
#define TM_DW_ROW1(acc, x01, x23) do { acc = TM_SMLAD(w1, x01, acc); acc = TM_SMLATB(wt, x23, acc); } while (0)
#define TM_DW_ROW2(acc, x01, x23) do { acc = TM_SMLAD(w2, x01, acc); acc = TM_SMLABB(wu, x23, acc); } while (0)

/* Asm fragments: load the row at [q] into x01 (taps 0, 1) and y (tap 2 in the low half), then
 * advance q one plane row; and the three row MACs. */
#define TM_DWA_LOAD "ldr %[x], [%[q]]\n\tldr %[y], [%[q], #4]\n\tadd %[q], %[q], %[sb]\n\t"
#define TM_DWA_R0(A) "smlad " A ", %[w0], %[x], " A "\n\tsmlabb " A ", %[wt], %[y], " A "\n\t"
#define TM_DWA_R1(A) "smlad " A ", %[w1], %[x], " A "\n\tsmlatb " A ", %[wt], %[y], " A "\n\t"
#define TM_DWA_R2(A) "smlad " A ", %[w2], %[x], " A "\n\tsmlabb " A ", %[wu], %[y], " A "\n\t"

/* The whole column of quads in one asm block (float rescale): everything lives in the 14
 * registers the compiler can give (one temporary suffices: a row's tap-pair word feeds up to
 * three pixels, then its third-tap word does); the bias, output zero point, row stride and
 * the count sit in a small array read when needed, and the rescale runs on the FPU in the same
 * block. */
#define TM_DWC_L01 "ldr %[x], [%[q]]\n\t"
#define TM_DWC_L2 "ldr %[x], [%[q], #4]\n\t"
#define TM_DWC_ADV "add %[q], %[q], %[sb]\n\t"
#define TM_DWC_P(K, A) "smlad " A ", %[w" #K "], %[x], " A "\n\t"
#define TM_DWC_S0(A) "smlabb " A ", %[wt], %[x], " A "\n\t"
#define TM_DWC_S1(A) "smlatb " A ", %[wt], %[x], " A "\n\t"
#define TM_DWC_S2(A) "smlabb " A ", %[wu], %[x], " A "\n\t"
#define TM_DWC_RQ(A)                                                                               \
    "vmov %[f], " A "\n\tvcvt.f32.s32 %[f], %[f]\n\tvmul.f32 %[f], %[f], %[scale]\n\t"              \
    "vcvtr.s32.f32 %[f], %[f]\n\tvmov " A ", %[f]\n\t"
#define TM_DWC_HEAD "1:\n\tldr %[a0], [%[ctx]]\n\tmov %[a1], %[a0]\n\tmov %[a2], %[a0]\n\tmov %[a3], %[a0]\n\t"
/* The quad's epilogue. The rescale moves two accumulators per VMOV (core register pair <->
 * consecutive single-precision registers s12..s15, which the asm claims as clobbers): 16
 * instructions for four outputs instead of 20. The loop ends when `o` reaches the end pointer
 * kept in ctx[3] (a compare instead of a decrement and a store of a count). */
#define TM_DWC_TAIL                                                                                \
    "vmov s12, s13, %[a0], %[a1]\n\tvmov s14, s15, %[a2], %[a3]\n\t"                              \
    "vcvt.f32.s32 s12, s12\n\tvcvt.f32.s32 s13, s13\n\tvcvt.f32.s32 s14, s14\n\tvcvt.f32.s32 s15, s15\n\t" \
    "vmul.f32 s12, s12, %[scale]\n\tvmul.f32 s13, s13, %[scale]\n\t"                              \
    "vmul.f32 s14, s14, %[scale]\n\tvmul.f32 s15, s15, %[scale]\n\t"                              \
    "vcvtr.s32.f32 s12, s12\n\tvcvtr.s32.f32 s13, s13\n\tvcvtr.s32.f32 s14, s14\n\tvcvtr.s32.f32 s15, s15\n\t" \
    "vmov %[a0], %[a1], s12, s13\n\tvmov %[a2], %[a3], s14, s15\n\t"                              \
    "ldr %[x], [%[ctx], #4]\n\t"                                                                   \
    "add %[a0], %[a0], %[x]\n\tssat %[a0], #8, %[a0]\n\tadd %[a1], %[a1], %[x]\n\tssat %[a1], #8, %[a1]\n\t" \
    "add %[a2], %[a2], %[x]\n\tssat %[a2], #8, %[a2]\n\tadd %[a3], %[a3], %[x]\n\tssat %[a3], #8, %[a3]\n\t" \
    "ldr %[x], [%[ctx], #8]\n\t"                                                                   \
    "strb %[a0], [%[o]]\n\tstrb %[a1], [%[o], %[x]]\n\tadd %[o], %[o], %[x], lsl #1\n\t"           \
    "strb %[a2], [%[o]]\n\tstrb %[a3], [%[o], %[x]]\n\tadd %[o], %[o], %[x], lsl #1\n\t"           \
    "ldr %[x], [%[ctx], #12]\n\tcmp %[o], %[x]\n\t"                                               \
    "bne 1b\n\t"
/* stride 1: plane rows 0..5 feed pixels j = r - k (kernel row k) */
#define TM_DWC_ROWS_S1                                                                             \
    TM_DWC_L01 TM_DWC_P(0, "%[a0]") TM_DWC_L2 TM_DWC_S0("%[a0]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(1, "%[a0]") TM_DWC_P(0, "%[a1]") TM_DWC_L2 TM_DWC_S1("%[a0]") TM_DWC_S0("%[a1]") TM_DWC_ADV \
    TM_DWC_L01 TM_DWC_P(2, "%[a0]") TM_DWC_P(1, "%[a1]") TM_DWC_P(0, "%[a2]")                      \
    TM_DWC_L2 TM_DWC_S2("%[a0]") TM_DWC_S1("%[a1]") TM_DWC_S0("%[a2]") TM_DWC_ADV                  \
    TM_DWC_L01 TM_DWC_P(2, "%[a1]") TM_DWC_P(1, "%[a2]") TM_DWC_P(0, "%[a3]")                      \
    TM_DWC_L2 TM_DWC_S2("%[a1]") TM_DWC_S1("%[a2]") TM_DWC_S0("%[a3]") TM_DWC_ADV                  \
    TM_DWC_L01 TM_DWC_P(2, "%[a2]") TM_DWC_P(1, "%[a3]") TM_DWC_L2 TM_DWC_S2("%[a2]") TM_DWC_S1("%[a3]") TM_DWC_ADV \
    TM_DWC_L01 TM_DWC_P(2, "%[a3]") TM_DWC_L2 TM_DWC_S2("%[a3]")                                   \
    "sub %[q], %[q], %[sb]\n\t"   /* 5 rows down, the next quad starts 4 rows down */
/* stride 2: plane rows 0..8, pixel j reads rows 2j..2j+2; 8 rows down = the next quad */
#define TM_DWC_ROWS_S2                                                                             \
    TM_DWC_L01 TM_DWC_P(0, "%[a0]") TM_DWC_L2 TM_DWC_S0("%[a0]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(1, "%[a0]") TM_DWC_L2 TM_DWC_S1("%[a0]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(2, "%[a0]") TM_DWC_P(0, "%[a1]") TM_DWC_L2 TM_DWC_S2("%[a0]") TM_DWC_S0("%[a1]") TM_DWC_ADV \
    TM_DWC_L01 TM_DWC_P(1, "%[a1]") TM_DWC_L2 TM_DWC_S1("%[a1]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(2, "%[a1]") TM_DWC_P(0, "%[a2]") TM_DWC_L2 TM_DWC_S2("%[a1]") TM_DWC_S0("%[a2]") TM_DWC_ADV \
    TM_DWC_L01 TM_DWC_P(1, "%[a2]") TM_DWC_L2 TM_DWC_S1("%[a2]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(2, "%[a2]") TM_DWC_P(0, "%[a3]") TM_DWC_L2 TM_DWC_S2("%[a2]") TM_DWC_S0("%[a3]") TM_DWC_ADV \
    TM_DWC_L01 TM_DWC_P(1, "%[a3]") TM_DWC_L2 TM_DWC_S1("%[a3]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(2, "%[a3]") TM_DWC_L2 TM_DWC_S2("%[a3]")

/* The column's last oh % 4 pixels, one per pass (same registers and array as above). */
#define TM_DWC_SINGLE(ADVANCE)                                                                     \
    "2:\n\tldr %[a0], [%[ctx]]\n\t"                                                                \
    TM_DWC_L01 TM_DWC_P(0, "%[a0]") TM_DWC_L2 TM_DWC_S0("%[a0]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(1, "%[a0]") TM_DWC_L2 TM_DWC_S1("%[a0]") TM_DWC_ADV                        \
    TM_DWC_L01 TM_DWC_P(2, "%[a0]") TM_DWC_L2 TM_DWC_S2("%[a0]") ADVANCE                           \
    TM_DWC_RQ("%[a0]")                                                                             \
    "ldr %[x], [%[ctx], #4]\n\tadd %[a0], %[a0], %[x]\n\tssat %[a0], #8, %[a0]\n\t"               \
    "ldr %[x], [%[ctx], #8]\n\tstrb %[a0], [%[o]]\n\tadd %[o], %[o], %[x]\n\t"                    \
    "ldr %[x], [%[ctx], #12]\n\tsubs %[x], %[x], #1\n\tstr %[x], [%[ctx], #12]\n\t"               \
    "bne 2b\n\t"

/* Every column of one channel: the quads of a column (if any), then its single pixels, then the
 * next column, with the channel's constants and column pointers in the context array:
 * ctx = {bias, output zero point, output row stride, (scratch: quad end / single count),
 * single pixels per column, plane column pointer, output column pointer, output end, plane bytes
 * per column step, output bytes per column step, output bytes spanned by a column's quads}.
 * One asm block per channel instead of two per column: the compiler reloaded the weights and
 * rewrote the context around each block, ~40 instructions per column. */
#define TM_DWC_CHANNEL(ROWS, SINGLE_ADVANCE)                                                       \
    "0:\n\t"                                                                                      \
    "ldr %[q], [%[ctx], #20]\n\tldr %[o], [%[ctx], #24]\n\t"                                     \
    "ldr %[x], [%[ctx], #40]\n\tadd %[x], %[o], %[x]\n\tstr %[x], [%[ctx], #12]\n\t"              \
    "cmp %[o], %[x]\n\tbeq 3f\n\t"                                                                \
    TM_DWC_HEAD ROWS TM_DWC_TAIL                                                                   \
    "3:\n\tldr %[x], [%[ctx], #16]\n\tcmp %[x], #0\n\tbeq 4f\n\tstr %[x], [%[ctx], #12]\n\t"     \
    TM_DWC_SINGLE(SINGLE_ADVANCE)                                                                  \
    "4:\n\t"                                                                                      \
    "ldr %[x], [%[ctx], #20]\n\tldr %[a0], [%[ctx], #32]\n\tadd %[x], %[x], %[a0]\n\tstr %[x], [%[ctx], #20]\n\t" \
    "ldr %[x], [%[ctx], #24]\n\tldr %[a0], [%[ctx], #36]\n\tadd %[x], %[x], %[a0]\n\tstr %[x], [%[ctx], #24]\n\t" \
    "ldr %[a0], [%[ctx], #28]\n\tcmp %[x], %[a0]\n\tbne 0b\n\t"

/* One channel: every output pixel. Four vertically adjacent pixels per pass share the plane
 * rows they read (stride 1: 6 rows for 4 pixels, each row feeding up to three of them), which
 * works whatever the output width (the DS-CNN's is 5). `s` and `mode` are constants at each
 * use (see TM_DW3_VARIANT), so neither costs a branch per pixel. */
static inline __attribute__((always_inline)) void tm_dw3x3_channel(
        const int16_t *plane, int32_t cols, const int32_t s, int32_t oh, int32_t ow, int32_t C, const int16_t *wc,
        int32_t b, int32_t zp_out, int32_t m, int32_t sh, float scale, int8_t *out, int mode) {
    const uint32_t w0 = tm_read32(wc), w1 = tm_read32(wc + 2), w2 = tm_read32(wc + 4);
    const uint32_t wt = tm_read32(wc + 6), wu = tm_read32(wc + 8);  /* (w02, w12), (w22, 0) */
    const int32_t rs = ow * C;                /* output row stride */
    const int32_t oh4 = oh & ~3;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FP) && !defined(TM_HOST_BUILD)
    if (mode == TM_RQ_FLOAT) {
        /* The whole channel, every column, in one asm block (TM_DWC_CHANNEL): the weights stay
         * in registers from the first column to the last. */
        int32_t ctx[11] = {b, zp_out, rs, 0, oh - oh4, (int32_t)(intptr_t)plane, (int32_t)(intptr_t)out,
                           (int32_t)(intptr_t)(out + ow * C), 2 * s, C, oh4 * rs};
        const int16_t *q;
        int8_t *o;
        int32_t a0, a1, a2, a3;
        uint32_t x;
        float f;
        const uint32_t sb = (uint32_t)cols * 2;
        if (s == 1) {
            __asm volatile(TM_DWC_CHANNEL(TM_DWC_ROWS_S1, "sub %[q], %[q], %[sb]\n\t")  /* single: one row down */
                : [q] "=&r"(q), [o] "=&r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2),
                  [a3] "=&r"(a3), [x] "=&r"(x), [f] "=&t"(f)
                : [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [wt] "r"(wt), [wu] "r"(wu), [sb] "r"(sb),
                  [scale] "t"(scale), [ctx] "r"(ctx)
                : "cc", "memory", "s12", "s13", "s14", "s15");
        } else {
            __asm volatile(TM_DWC_CHANNEL(TM_DWC_ROWS_S2, "")                           /* two rows down: there */
                : [q] "=&r"(q), [o] "=&r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2),
                  [a3] "=&r"(a3), [x] "=&r"(x), [f] "=&t"(f)
                : [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [wt] "r"(wt), [wu] "r"(wu), [sb] "r"(sb),
                  [scale] "t"(scale), [ctx] "r"(ctx)
                : "cc", "memory", "s12", "s13", "s14", "s15");
        }
        return;
    }
#endif
    for (int32_t ox = 0; ox < ow; ox++) {
        const int16_t *col = plane + ox * s;
        int8_t *o = out + ox * C;
        int32_t oy = 0;
        for (; oy < oh4; oy += 4) {
            const int16_t *q = col + oy * s * cols;
            int32_t a0 = b, a1 = b, a2 = b, a3 = b;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(TM_HOST_BUILD)
            /* Hand-scheduled: stride 1 = 41 instructions for 36 MACs, stride 2 = 51. */
            uint32_t x, y;
            const uint32_t sb = (uint32_t)cols * 2;
            if (s == 1) {
                __asm volatile(
                    TM_DWA_LOAD TM_DWA_R0("%[a0]")
                    TM_DWA_LOAD TM_DWA_R1("%[a0]") TM_DWA_R0("%[a1]")
                    TM_DWA_LOAD TM_DWA_R2("%[a0]") TM_DWA_R1("%[a1]") TM_DWA_R0("%[a2]")
                    TM_DWA_LOAD TM_DWA_R2("%[a1]") TM_DWA_R1("%[a2]") TM_DWA_R0("%[a3]")
                    TM_DWA_LOAD TM_DWA_R2("%[a2]") TM_DWA_R1("%[a3]")
                    "ldr %[x], [%[q]]\n\tldr %[y], [%[q], #4]\n\t" TM_DWA_R2("%[a3]")
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [q] "+r"(q), [x] "=&r"(x),
                      [y] "=&r"(y)
                    : [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [wt] "r"(wt), [wu] "r"(wu), [sb] "r"(sb)
                    : "memory");
            } else {
                __asm volatile(
                    TM_DWA_LOAD TM_DWA_R0("%[a0]")
                    TM_DWA_LOAD TM_DWA_R1("%[a0]")
                    TM_DWA_LOAD TM_DWA_R2("%[a0]") TM_DWA_R0("%[a1]")
                    TM_DWA_LOAD TM_DWA_R1("%[a1]")
                    TM_DWA_LOAD TM_DWA_R2("%[a1]") TM_DWA_R0("%[a2]")
                    TM_DWA_LOAD TM_DWA_R1("%[a2]")
                    TM_DWA_LOAD TM_DWA_R2("%[a2]") TM_DWA_R0("%[a3]")
                    TM_DWA_LOAD TM_DWA_R1("%[a3]")
                    "ldr %[x], [%[q]]\n\tldr %[y], [%[q], #4]\n\t" TM_DWA_R2("%[a3]")
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [q] "+r"(q), [x] "=&r"(x),
                      [y] "=&r"(y)
                    : [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [wt] "r"(wt), [wu] "r"(wu), [sb] "r"(sb)
                    : "memory");
            }
#else
            uint32_t r[9][2];
            for (int32_t k = 0; k < 3 * s + 3 && k < 9; k++) {
                r[k][0] = tm_read32(q + k * cols);
                r[k][1] = tm_read32(q + k * cols + 2);
            }
            TM_DW_ROW0(a0, r[0][0], r[0][1]); TM_DW_ROW1(a0, r[1][0], r[1][1]); TM_DW_ROW2(a0, r[2][0], r[2][1]);
            TM_DW_ROW0(a1, r[s][0], r[s][1]); TM_DW_ROW1(a1, r[s + 1][0], r[s + 1][1]);
            TM_DW_ROW2(a1, r[s + 2][0], r[s + 2][1]);
            TM_DW_ROW0(a2, r[2 * s][0], r[2 * s][1]); TM_DW_ROW1(a2, r[2 * s + 1][0], r[2 * s + 1][1]);
            TM_DW_ROW2(a2, r[2 * s + 2][0], r[2 * s + 2][1]);
            TM_DW_ROW0(a3, r[3 * s][0], r[3 * s][1]); TM_DW_ROW1(a3, r[3 * s + 1][0], r[3 * s + 1][1]);
            TM_DW_ROW2(a3, r[3 * s + 2][0], r[3 * s + 2][1]);
#endif
            o[0] = tm_dw_out(a0, zp_out, m, sh, scale, mode);
            o[rs] = tm_dw_out(a1, zp_out, m, sh, scale, mode);
            o[2 * rs] = tm_dw_out(a2, zp_out, m, sh, scale, mode);
            o[3 * rs] = tm_dw_out(a3, zp_out, m, sh, scale, mode);
            o += 4 * rs;
        }
        for (; oy < oh; oy++) {  /* the last oh % 4 pixels of the column, one at a time */
            const int16_t *q = col + oy * s * cols;
            int32_t a = b;
            TM_DW_ROW0(a, tm_read32(q), tm_read32(q + 2));
            TM_DW_ROW1(a, tm_read32(q + cols), tm_read32(q + cols + 2));
            TM_DW_ROW2(a, tm_read32(q + 2 * cols), tm_read32(q + 2 * cols + 2));
            o[0] = tm_dw_out(a, zp_out, m, sh, scale, mode);
            o += rs;
        }
    }
}

/* One out-of-line copy per (stride, requantization mode): each has few live values, so the
 * compiler keeps the weights in registers instead of reloading them from the stack. */
#define TM_DW3_VARIANT(NAME, S, MODE)                                                              \
    static __attribute__((noinline)) void NAME(const int16_t *plane, int32_t cols, int32_t oh, int32_t ow, \
                                                 int32_t C, const int16_t *wc, int32_t b, int32_t zp_out,  \
                                                 int32_t m, int32_t sh, float scale, int8_t *out) {      \
        tm_dw3x3_channel(plane, cols, S, oh, ow, C, wc, b, zp_out, m, sh, scale, out, MODE);          \
    }
TM_DW3_VARIANT(tm_dw3_s1_float, 1, TM_RQ_FLOAT)
TM_DW3_VARIANT(tm_dw3_s2_float, 2, TM_RQ_FLOAT)
TM_DW3_VARIANT(tm_dw3_s1_fixhi, 1, TM_RQ_FIXED_HI)
TM_DW3_VARIANT(tm_dw3_s2_fixhi, 2, TM_RQ_FIXED_HI)
TM_DW3_VARIANT(tm_dw3_s1_fix, 1, TM_RQ_FIXED)
TM_DW3_VARIANT(tm_dw3_s2_fix, 2, TM_RQ_FIXED)

/* Channels c..c+3 into four planes `pstride` entries apart: one word load gives the four
 * channels of a pixel, SXTB16 splits them into (c, c+2) and (c+1, c+3), and two pixels'
 * values go to each plane in one 32-bit store: ~2 instructions per value instead of ~6 one
 * channel at a time. */
static void tm_dw_fill_planes4(const tm_conv_params *p, const int8_t *in, int32_t c, int16_t *plane,
                               int32_t rows, int32_t cols, int32_t pstride) {
    const int32_t C = p->in_c, H = p->in_h, W = p->in_w, top = p->pad_top;
    const int32_t left = p->pad_left < cols ? p->pad_left : cols;
    const int32_t n_in = W < cols - left ? W : cols - left;
    const int32_t y_end = H + top < rows ? H + top : rows;
    const int8_t *src_row = in + c;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(TM_HOST_BUILD)
    if (n_in == W && W >= 2) {
        /* Whole input rows (the usual case: the padding is narrower than the plane's margin).
         * Hand-scheduled: 18 instructions per two pixels (8 values), the register-offset stores
         * reaching all four planes from one pointer. The compiled loop spent ~30 instructions
         * per row on set-up, as much as the values of a 5-pixel row (the DS-CNN's). Input rows
         * follow each other in memory, so `src` simply runs on. */
        const uint32_t ps2 = (uint32_t)pstride * 2, ps6 = ps2 * 3;
        const int8_t *src = src_row;
        for (int32_t r = top; r < y_end; r++) {
            int16_t *d = plane + r * cols + left;
            int32_t n = W >> 1;
            uint32_t v0, v1, e0, e1, t;
            __asm volatile(
                "1:\n\t"
                "ldr %[v0], [%[src]]\n\tldr %[v1], [%[src], %[C]]\n\tadd %[src], %[src], %[C], lsl #1\n\t"
                "sxtb16 %[e0], %[v0]\n\tsxtb16 %[v0], %[v0], ror #8\n\t"      /* (c, c+2), (c+1, c+3) */
                "sxtb16 %[e1], %[v1]\n\tsxtb16 %[v1], %[v1], ror #8\n\t"
                "pkhbt %[t], %[e0], %[e1], lsl #16\n\tstr %[t], [%[d]]\n\t"               /* channel c   */
                "pkhtb %[e1], %[e1], %[e0], asr #16\n\tstr %[e1], [%[d], %[ps2], lsl #1]\n\t" /* c + 2 */
                "pkhbt %[e0], %[v0], %[v1], lsl #16\n\tstr %[e0], [%[d], %[ps2]]\n\t"      /* c + 1 */
                "pkhtb %[v1], %[v1], %[v0], asr #16\n\tstr %[v1], [%[d], %[ps6]]\n\t"      /* c + 3 */
                "add %[d], %[d], #4\n\tsubs %[n], %[n], #1\n\tbne 1b\n\t"
                : [src] "+r"(src), [d] "+r"(d), [n] "+r"(n), [v0] "=&r"(v0), [v1] "=&r"(v1), [e0] "=&r"(e0),
                  [e1] "=&r"(e1), [t] "=&r"(t)
                : [C] "r"(C), [ps2] "r"(ps2), [ps6] "r"(ps6)
                : "cc", "memory");
            if (W & 1) {
                const uint32_t v = tm_read32(src);
                const uint32_t e = TM_SXTB16(v), o = TM_SXTB16_ROR8(v);
                src += C;
                d[0] = (int16_t)e;
                d[pstride] = (int16_t)o;
                d[2 * pstride] = (int16_t)(e >> 16);
                d[3 * pstride] = (int16_t)(o >> 16);
            }
        }
        return;
    }
#endif
    for (int32_t r = top; r < y_end; r++, src_row += W * C) {
        const int8_t *src = src_row;
        int16_t *d = plane + r * cols + left;
        int32_t n = n_in;
        for (; n >= 2; n -= 2) {  /* two pixels: one 32-bit store per plane (the pack is one PKH) */
            const uint32_t v0 = tm_read32(src), v1 = tm_read32(src + C);
            const uint32_t e0 = TM_SXTB16(v0), o0 = TM_SXTB16_ROR8(v0);
            const uint32_t e1 = TM_SXTB16(v1), o1 = TM_SXTB16_ROR8(v1);
            src += 2 * C;
            tm_write32(d, (e0 & 0xFFFFu) | (e1 << 16));
            tm_write32(d + pstride, (o0 & 0xFFFFu) | (o1 << 16));
            tm_write32(d + 2 * pstride, (e0 >> 16) | (e1 & 0xFFFF0000u));
            tm_write32(d + 3 * pstride, (o0 >> 16) | (o1 & 0xFFFF0000u));
            d += 2;
        }
        if (n) {
            const uint32_t v = tm_read32(src);
            const uint32_t e = TM_SXTB16(v), o = TM_SXTB16_ROR8(v);
            d[0] = (int16_t)e;
            d[pstride] = (int16_t)o;
            d[2 * pstride] = (int16_t)(e >> 16);
            d[3 * pstride] = (int16_t)(o >> 16);
        }
    }
}

static void tm_dw3_run(const tm_conv_params *p, const int16_t *plane, int32_t cols, const int16_t *w,
                       const int32_t *bias_zp, const int32_t *mult, const int32_t *shift, int8_t *out, int32_t c) {
    const int32_t s = p->sh, oh = p->out_h, ow = p->out_w, C = p->in_c, zp_out = p->out_zp;
    const int16_t *wc = w + 10 * c;
    const int32_t b = bias_zp[c];
    if (!shift) {
        float scale;
        __builtin_memcpy(&scale, &mult[c], 4);
        (s == 1 ? tm_dw3_s1_float : tm_dw3_s2_float)(plane, cols, oh, ow, C, wc, b, zp_out, 0, 0, scale, out + c);
    } else if (shift[c] > 32) {
        (s == 1 ? tm_dw3_s1_fixhi : tm_dw3_s2_fixhi)(plane, cols, oh, ow, C, wc, b, zp_out, mult[c], shift[c],
                                                     0.0f, out + c);
    } else {
        (s == 1 ? tm_dw3_s1_fix : tm_dw3_s2_fix)(plane, cols, oh, ow, C, wc, b, zp_out, mult[c], shift[c],
                                                 0.0f, out + c);
    }
}

void tm_dwconv3x3(const tm_conv_params *p, const int8_t *in, const int16_t *w, const int32_t *bias_zp,
                  const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *plane) {
    const int32_t s = p->sh, oh = p->out_h, ow = p->out_w, C = p->in_c;
    /* rows and (even) columns the output pixels read, including the pair loads' last word */
    const int32_t rows = (oh - 1) * s + 3, cols = ((ow - 1) * s + 4 + 1) & ~1, ps = rows * cols;
    const int32_t nplanes = C >= 4 ? 4 : 1;
    tm_dw_pad_plane(p, plane, nplanes * rows, cols);
    int32_t c = 0;
    for (; c + 4 <= C; c += 4) {  /* four channels per fill */
        tm_dw_fill_planes4(p, in, c, plane, rows, cols, ps);
        for (int32_t k = 0; k < 4; k++) tm_dw3_run(p, plane + k * ps, cols, w, bias_zp, mult, shift, out, c + k);
    }
    for (; c < C; c++) {
        tm_dw_fill_plane(p, in, c, plane, rows, cols);
        tm_dw3_run(p, plane, cols, w, bias_zp, mult, shift, out, c);
    }
}

void tm_add(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, int32_t zp_a, int32_t zp_b,
            int32_t mult_a, int32_t mult_b, int32_t shift, int32_t zp_out, int32_t act_min, int32_t act_max) {
    /* The rounding constant starts the 64-bit accumulator, so an element is two SMLALs and a
     * two-word shift (the result fits in 32 bits). The common case (int8 range, shift < 32,
     * as add_multipliers makes it for ratios near 1) runs a loop with nothing else in it. */
    const int64_t half = (int64_t)1 << (shift - 1);
    if (act_min == -128 && act_max == 127 && shift < 32) {
        const uint32_t half_lo = (uint32_t)half;
        const int32_t up = 32 - shift;
#pragma clang loop unroll(disable)
        for (int32_t i = 0; i < n; i++) {
            int64_t acc = (int64_t)half_lo;
            acc += (int64_t)(a[i] - zp_a) * mult_a;
            acc += (int64_t)(b[i] - zp_b) * mult_b;
            const int32_t v = (int32_t)(((uint32_t)acc >> shift) | ((uint32_t)(acc >> 32) << up));
            out[i] = TM_SAT8(zp_out + v);
        }
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        int64_t acc = half;
        acc += (int64_t)(a[i] - zp_a) * mult_a;
        acc += (int64_t)(b[i] - zp_b) * mult_b;
        out[i] = tm_saturate(zp_out + (int32_t)(acc >> shift), act_min, act_max);
    }
}


/* x * y + z with one rounding: VFMA.F32 (the freestanding build has no libm fmaf to call). */
static inline float tm_fmaf(float x, float y, float z) {
#if defined(__ARM_FP) && !defined(TM_HOST_BUILD)
    __asm("vfma.f32 %0, %1, %2" : "+t"(z) : "t"(x), "t"(y));
    return z;
#else
    return __builtin_fmaf(x, y, z);
#endif
}

void tm_add_float(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, float ratio_a, float ratio_b,
                  float fixed, int32_t act_min, int32_t act_max) {
    /* Two explicit fused multiply-adds (VFMA.F32, one rounding each) in onnxruntime's order: the
     * zero points are folded into `fixed`, so the int8 values convert straight to float. */
    if (act_min == -128 && act_max == 127) {
#pragma clang loop unroll(disable)
        for (int32_t i = 0; i < n; i++) {
            const float t = tm_fmaf((float)b[i], ratio_b, fixed);
            out[i] = TM_SAT8(tm_round_even_f32(tm_fmaf((float)a[i], ratio_a, t)));
        }
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        const float t = tm_fmaf((float)b[i], ratio_b, fixed);
        out[i] = tm_saturate(tm_round_even_f32(tm_fmaf((float)a[i], ratio_a, t)), act_min, act_max);
    }
}

void tm_global_avgpool_float(const int8_t *in, int8_t *out, int32_t hw, int32_t c, int32_t zp_in,
                             float scale, int32_t zp_out) {
    for (int32_t ch = 0; ch < c; ch++) {
        int32_t sum = -zp_in * hw;
        const int8_t *x = in + ch;
        for (int32_t i = 0; i < hw; i++, x += c) sum += *x;
        out[ch] = tm_saturate(zp_out + tm_round_even_f32((float)sum * scale), -128, 127);
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

/* Patch-based execution (deploy/schedule.py): copy an h x w window of c channels between two
 * channels-last tensors of different widths. A crop reads a patch's receptive field out of a
 * bigger tensor into a small contiguous buffer; a paste writes a finished tile into the whole
 * split tensor. Each window row is one contiguous run of w * c bytes. */
void tm_copy2d(const int8_t *src, int32_t src_w, int32_t sy, int32_t sx, int8_t *dst, int32_t dst_w,
               int32_t dy, int32_t dx, int32_t h, int32_t w, int32_t c) {
    const int32_t run = w * c;
    for (int32_t y = 0; y < h; y++)
        memcpy(dst + ((dy + y) * dst_w + dx) * c, src + ((sy + y) * src_w + sx) * c, (unsigned int)run);
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
