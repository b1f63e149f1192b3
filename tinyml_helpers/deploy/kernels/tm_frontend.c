/* Log-mel front end on the Cortex-M4F: see tm_frontend.h (written for this course). */
#include "tm_frontend.h"

#define TM_FE_M (TM_FE_NFFT / 2)

float tm_fe_buf_a[TM_FE_NFFT] __attribute__((aligned(8)));
float tm_fe_buf_b[TM_FE_NFFT] __attribute__((aligned(8)));

/* One radix-p pass of a Stockham (self-sorting) decimation-in-time FFT on complex arrays of
 * TM_FE_M values stored (re, im): `ls` = length of the transforms already done, r = number of
 * transforms after this pass. For transform k and index j, input q is x[(q r + k) ls + j],
 * twisted by W_L^(q j) (L = ls p), and output t goes to y[k L + j + t ls]. The ordering is
 * natural after the last pass, with no bit reversal. */
static void tm_fe_pass4(const float *x, float *y, int ls, int r) {
    const int L = ls * 4;
    for (int j = 0; j < ls; j++) {
        const float *w1 = &tm_fe_twiddle[2 * (j * r)], *w2 = &tm_fe_twiddle[2 * (2 * j * r)],
                    *w3 = &tm_fe_twiddle[2 * (3 * j * r)];
        for (int k = 0; k < r; k++) {
            const float *a = &x[2 * (k * ls + j)];
            const int s = 2 * r * ls;   /* distance between inputs q and q+1 */
            float a0r = a[0], a0i = a[1];
            float b1r = a[s], b1i = a[s + 1], b2r = a[2 * s], b2i = a[2 * s + 1];
            float b3r = a[3 * s], b3i = a[3 * s + 1];
            /* twiddles (all 1 when j == 0, but the multiply is cheaper than a branch per k) */
            float a1r = b1r * w1[0] - b1i * w1[1], a1i = b1r * w1[1] + b1i * w1[0];
            float a2r = b2r * w2[0] - b2i * w2[1], a2i = b2r * w2[1] + b2i * w2[0];
            float a3r = b3r * w3[0] - b3i * w3[1], a3i = b3r * w3[1] + b3i * w3[0];
            float s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i;
            float s13r = a1r + a3r, s13i = a1i + a3i, d13r = a1r - a3r, d13i = a1i - a3i;
            float *o = &y[2 * (k * L + j)];
            const int t = 2 * ls;
            o[0] = s02r + s13r;          o[1] = s02i + s13i;
            o[t] = d02r + d13i;          o[t + 1] = d02i - d13r;      /* d02 - i d13 */
            o[2 * t] = s02r - s13r;      o[2 * t + 1] = s02i - s13i;
            o[3 * t] = d02r - d13i;      o[3 * t + 1] = d02i + d13r;  /* d02 + i d13 */
        }
    }
}

/* Radix 5 with the DFT-5 written out (cos/sin of 2 pi/5 and 4 pi/5): a generic 5-point DFT
 * costs 25 complex multiply-adds per butterfly, this one 8 real products. */
#define TM_C1 0.309016994f   /* cos(2 pi / 5) */
#define TM_C2 -0.809016994f  /* cos(4 pi / 5) */
#define TM_S1 0.951056516f   /* sin(2 pi / 5) */
#define TM_S2 0.587785252f   /* sin(4 pi / 5) */
static void tm_fe_pass5(const float *x, float *y, int ls, int r) {
    const int L = ls * 5, s = 2 * r * ls, t = 2 * ls;
    for (int j = 0; j < ls; j++) {
        for (int k = 0; k < r; k++) {
            const float *a = &x[2 * (k * ls + j)];
            float ar[5], ai[5];
            ar[0] = a[0]; ai[0] = a[1];
            for (int q = 1; q < 5; q++) {
                const float *w = &tm_fe_twiddle[2 * (q * j * r)];   /* W_L^(q j); 1 when j == 0 */
                const float br = a[q * s], bi = a[q * s + 1];
                ar[q] = br * w[0] - bi * w[1];
                ai[q] = br * w[1] + bi * w[0];
            }
            const float t1r = ar[1] + ar[4], t1i = ai[1] + ai[4], t2r = ar[2] + ar[3], t2i = ai[2] + ai[3];
            const float t3r = ar[1] - ar[4], t3i = ai[1] - ai[4], t4r = ar[2] - ar[3], t4i = ai[2] - ai[3];
            const float Ar = ar[0] + TM_C1 * t1r + TM_C2 * t2r, Ai = ai[0] + TM_C1 * t1i + TM_C2 * t2i;
            const float Br = ar[0] + TM_C2 * t1r + TM_C1 * t2r, Bi = ai[0] + TM_C2 * t1i + TM_C1 * t2i;
            const float ur = TM_S1 * t3r + TM_S2 * t4r, ui = TM_S1 * t3i + TM_S2 * t4i;
            const float vr = TM_S2 * t3r - TM_S1 * t4r, vi = TM_S2 * t3i - TM_S1 * t4i;
            float *o = &y[2 * (k * L + j)];
            o[0] = ar[0] + t1r + t2r;  o[1] = ai[0] + t1i + t2i;
            o[t] = Ar + ui;            o[t + 1] = Ai - ur;          /* A - i u */
            o[2 * t] = Br + vi;        o[2 * t + 1] = Bi - vr;      /* B - i v */
            o[3 * t] = Br - vi;        o[3 * t + 1] = Bi + vr;      /* B + i v */
            o[4 * t] = Ar - ui;        o[4 * t + 1] = Ai + ur;      /* A + i u */
        }
    }
}

/* Any other small radix (2, 3): a direct p-point DFT per butterfly with W_p from the table. */
static void tm_fe_pass_any(const float *x, float *y, int ls, int r, int p) {
    const int L = ls * p, step = TM_FE_M / p;
    float cr[5], ci[5];
    for (int j = 0; j < ls; j++) {
        for (int k = 0; k < r; k++) {
            for (int q = 0; q < p; q++) {
                const float *a = &x[2 * ((q * r + k) * ls + j)];
                const float *w = &tm_fe_twiddle[2 * ((q * j * r) % TM_FE_M)];
                cr[q] = a[0] * w[0] - a[1] * w[1];
                ci[q] = a[0] * w[1] + a[1] * w[0];
            }
            float *o = &y[2 * (k * L + j)];
            for (int t = 0; t < p; t++) {
                float sr = cr[0], si = ci[0];
                for (int q = 1; q < p; q++) {
                    const float *w = &tm_fe_twiddle[2 * (((q * t) % p) * step)];
                    sr += cr[q] * w[0] - ci[q] * w[1];
                    si += cr[q] * w[1] + ci[q] * w[0];
                }
                o[2 * t * ls] = sr;
                o[2 * t * ls + 1] = si;
            }
        }
    }
}

int8_t tm_fe_level(float s) {
    /* tm_fe_levels is sorted, its last entry +inf: 8 halvings find how many entries are <= s */
    int pos = 0;
    for (int step = 128; step; step >>= 1)
        if (s >= tm_fe_levels[pos + step - 1]) pos += step;
    return (int8_t)(pos - 128);
}

void tm_fe_frame(const int16_t *ring, uint32_t start, uint32_t mask, int8_t *out) {
    float *x = tm_fe_buf_a, *y = tm_fe_buf_b;
    /* Real samples n = 2m, 2m+1 become the complex value z[m]: the windowed frame already is
     * the interleaved (re, im) array of the half-size complex FFT. */
    for (int n = 0; n < TM_FE_NFFT; n++)
        x[n] = (float)ring[(start + (uint32_t)n) & mask] * tm_fe_window[n];
    int ls = 1;
    for (int s = 0; s < TM_FE_STAGES; s++) {
        const int p = tm_fe_radices[s];
        const int r = TM_FE_M / (ls * p);
        if (p == 4) tm_fe_pass4(x, y, ls, r);
        else if (p == 5) tm_fe_pass5(x, y, ls, r);
        else tm_fe_pass_any(x, y, ls, r, p);
        float *tmp = x; x = y; y = tmp;
        ls *= p;
    }
    /* Split: X[k] = E[k] + W_N^k O[k], E = (Z[k] + conj Z[M-k]) / 2, O = (Z[k] - conj Z[M-k]) / 2i.
     * The power of bins 0..M goes to y (M + 1 floats). */
    float *power = y;
    power[0] = (x[0] + x[1]) * (x[0] + x[1]);
    power[TM_FE_M] = (x[0] - x[1]) * (x[0] - x[1]);
    for (int k = 1; k < TM_FE_M; k++) {
        const float zr = x[2 * k], zi = x[2 * k + 1];
        const float cr = x[2 * (TM_FE_M - k)], ci = -x[2 * (TM_FE_M - k) + 1];  /* conj Z[M-k] */
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        const float dr = 0.5f * (zr - cr), di = 0.5f * (zi - ci);
        const float orr = di, oi = -dr;                 /* d / i = -i d */
        const float wr = tm_fe_split[2 * k], wi = tm_fe_split[2 * k + 1];
        const float xr = er + (orr * wr - oi * wi), xi = ei + (orr * wi + oi * wr);
        power[k] = xr * xr + xi * xi;
    }
    const float *w = tm_fe_mel_weights;
    for (int b = 0; b < TM_FE_NMELS; b++) {
        const float *pw = &power[tm_fe_mel_start[b]];
        const int n = tm_fe_mel_offset[b + 1] - tm_fe_mel_offset[b];
        float acc = 0.0f;
        for (int i = 0; i < n; i++) acc += w[i] * pw[i];
        w += n;
        out[b] = tm_fe_level(acc);
    }
}
