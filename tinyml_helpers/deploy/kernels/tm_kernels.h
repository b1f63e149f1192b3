/* int8 inference kernels for the course's Cortex-M4 firmware (written for this course).
 *
 * Layout: activations are int8, channels-last (H, W, C); weights are int8 with zero point 0
 * (symmetric, as onnxruntime's quantize_static makes them); biases are int32 in the
 * accumulator's scale (x_scale * w_scale). Conv/dense/depthwise outputs are rescaled one of two
 * ways, chosen by codegen.py (DEFAULT_REQUANT; notebook 06 measures both):
 *   shift == NULL (the default): `mult` holds float32 scales and the rescale is onnxruntime's
 *     (float32 product, round half to even, on the FPU): bit-exact with onnxruntime;
 *   otherwise integer-only, for cores without an FPU:
 *     y = zp_y + ((acc * mult + 2^(n-1)) >> n)        then saturated to [act_min, act_max]
 *     with a 31-bit multiplier `mult` and a right shift `n` computed offline by codegen.py.
 * Adds and average pooling always use the integer form.
 */
#ifndef TM_KERNELS_H
#define TM_KERNELS_H
#include <stdint.h>

typedef struct {
    int16_t in_h, in_w, in_c, out_h, out_w, out_c;
    int8_t kh, kw, sh, sw, pad_top, pad_left, dh, dw;
    int32_t in_zp, out_zp, act_min, act_max;
} tm_conv_params;

static inline int32_t tm_requantize(int32_t acc, int32_t mult, int32_t shift) {
    if (shift > 32) {
        /* hi = floor(acc*mult / 2^32) (one SMMUL); then floor((hi + 2^(r-1)) / 2^r) with
         * r = shift-32, written as ((hi >> (r-1)) + 1) >> 1: exactly the rounded result of
         * (acc*mult + 2^(shift-1)) >> shift, in four instructions. */
        const int32_t hi = (int32_t)(((int64_t)acc * (int64_t)mult) >> 32);
        return ((hi >> (shift - 33)) + 1) >> 1;
    }
    return (int32_t)(((int64_t)acc * (int64_t)mult + ((int64_t)1 << (shift - 1))) >> shift);
}

/* Standard convolution (group = 1), also used for dense layers (1x1 spatial). `col` is an
 * int16 scratch buffer of at least 2*Kp entries, Kp = kh*kw*in_c rounded up to a multiple of 4
 * (two output pixels at a time). Weights: [out_c][kh][kw][in_c], each row zero-padded to Kp,
 * groups of 4 along K permuted to (w0, w2, w1, w3) (codegen.pack_conv_weights). A 1x1 conv at
 * stride 1 without padding widens pixel pairs straight from the input (no im2col window), and
 * with one input channel runs a loop of its own (one MAC per output: no dot product to speed). */
void tm_conv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
               const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *col);

/* Depthwise convolution (group = in_c = out_c). Weights: [kh][kw][c]. `bias_zp` is the bias
 * with the input zero point folded in (bias - zp_x * sum of the channel's weights), used where
 * the whole window lies inside the image. */
void tm_dwconv2d(const tm_conv_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                 const int32_t *bias_zp, const int32_t *mult, const int32_t *shift, int8_t *out);

/* Depthwise 3x3 convolution, stride 1 or 2, dilation 1, any padding and channel count (the
 * fast path; codegen falls back to tm_dwconv2d for anything else). Channel by channel: the
 * channel's padded input plane is widened once into `plane` (int16, padding = the input zero
 * point, so `bias_zp` holds for every pixel and the inner loop has no bounds checks), then two
 * output pixels per pass, one SMLAD per kernel row and pixel for taps 0 and 1 plus one 16x16
 * MAC for tap 2, the row's input words shared by both pixels. `w` holds 10 int16 per channel
 * (see codegen.pack_dw3x3_weights): (w00,w01) (w10,w11) (w20,w21) (w02,w12) (w22,0).
 * `plane` needs codegen.dw3x3_plane_entries(out_h, out_w, stride, channels) int16 entries (up to four
 * channel planes: four channels are widened from one word load). */
void tm_dwconv3x3(const tm_conv_params *p, const int8_t *in, const int16_t *w, const int32_t *bias_zp,
                  const int32_t *mult, const int32_t *shift, int8_t *out, int16_t *plane);

/* Element-wise add of two quantized tensors: y = zp_y + round((a - zp_a) * ra + (b - zp_b) * rb)
 * with ra, rb given as multipliers sharing one right shift. */
void tm_add(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, int32_t zp_a, int32_t zp_b,
            int32_t mult_a, int32_t mult_b, int32_t shift, int32_t zp_out, int32_t act_min, int32_t act_max);

/* Element-wise add with onnxruntime's own float32 arithmetic (its x86-64 AVX2/FMA kernel):
 * y = saturate(round_half_even(fmaf(a, ratio_a, fmaf(b, ratio_b, fixed)))) on the raw int8 values,
 * ratio_a = sa / sc, ratio_b = sb / sc, fixed = zp_y - fmaf(ratio_a, zp_a, ratio_b * zp_b)
 * (codegen / quant.add_float_params). Bit-exact with onnxruntime's QLinearAdd, which rounds this
 * float32 value, not the exact sum tm_add rounds: the two differ when the sum is within float32
 * error of a .5. Needs an FPU with fused multiply-add (Cortex-M4F: VFMA.F32). */
void tm_add_float(const int8_t *a, const int8_t *b, int8_t *out, int32_t n, float ratio_a, float ratio_b,
                  float fixed, int32_t act_min, int32_t act_max);

/* Global average pooling over H*W for each channel. */
void tm_global_avgpool(const int8_t *in, int8_t *out, int32_t hw, int32_t c, int32_t zp_in,
                       int32_t mult, int32_t shift, int32_t zp_out);

/* The same with onnxruntime's float rescale: zp_out + round_half_even(float(sum) * scale),
 * scale = x_scale / (y_scale * hw) in float32. */
void tm_global_avgpool_float(const int8_t *in, int8_t *out, int32_t hw, int32_t c, int32_t zp_in,
                             float scale, int32_t zp_out);

/* Max pooling (no zero-point change: max commutes with an affine map of positive scale). */
void tm_maxpool2d(const int8_t *in, int8_t *out, int32_t in_h, int32_t in_w, int32_t c, int32_t out_h,
                  int32_t out_w, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t pad_top, int32_t pad_left);

/* Constant padding of an (H, W, C) tensor with `value` (the zero point for a zero pad). */
void tm_pad2d(const int8_t *in, int8_t *out, int32_t in_h, int32_t in_w, int32_t c, int32_t top,
              int32_t bottom, int32_t left, int32_t right, int8_t value);

/* Clamp (ReLU / ReLU6 / Clip on a quantized tensor), in place allowed. */
void tm_clamp(const int8_t *in, int8_t *out, int32_t n, int32_t lo, int32_t hi);

/* Copy an h x w window of c channels from (sy, sx) of a src_w-wide tensor to (dy, dx) of a
 * dst_w-wide one: the crop and paste steps of patch-based execution (schedule.py). */
void tm_copy2d(const int8_t *src, int32_t src_w, int32_t sy, int32_t sx, int8_t *dst, int32_t dst_w,
               int32_t dy, int32_t dx, int32_t h, int32_t w, int32_t c);

void *memcpy(void *dst, const void *src, unsigned int n);
void *memset(void *dst, int v, unsigned int n);
#endif
