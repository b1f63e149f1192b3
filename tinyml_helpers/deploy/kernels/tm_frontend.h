/* Log-mel front end of the course's keyword spotter, on the Cortex-M4F (written for this course;
 * see tinyml_helpers/deploy/frontend.py for the definition it reproduces and why).
 *
 * tm_fe_frame() turns TM_FE_NFFT int16 samples, read from a ring buffer, into TM_FE_NMELS int8
 * values: Hann window, real FFT (a TM_FE_NFFT/2-point mixed-radix complex FFT in float32 plus
 * the real-input split), power, sparse mel filterbank, then the int8 level of each band's power
 * by a binary search in a table of decision thresholds (log10, normalisation and quantisation
 * folded offline). All constants come from the generated tm_frontend_tables.c. */
#ifndef TM_FRONTEND_H
#define TM_FRONTEND_H
#include <stdint.h>
#include "tm_frontend_config.h"

extern const float tm_fe_window[TM_FE_NFFT];
extern const uint8_t tm_fe_radices[TM_FE_STAGES];
extern const float tm_fe_twiddle[TM_FE_NFFT];      /* TM_FE_NFFT/2 complex values */
extern const float tm_fe_split[TM_FE_NFFT];
extern const uint16_t tm_fe_mel_start[TM_FE_NMELS];
extern const uint16_t tm_fe_mel_offset[TM_FE_NMELS + 1];
extern const float tm_fe_mel_weights[];
extern const float tm_fe_levels[256];

/* Work buffers (RAM): two complex arrays of TM_FE_NFFT/2 values for the ping-pong FFT. */
extern float tm_fe_buf_a[TM_FE_NFFT], tm_fe_buf_b[TM_FE_NFFT];

/* One frame: samples ring[(start + n) & mask], n = 0..TM_FE_NFFT-1 (mask + 1 = the ring's
 * size, a power of two >= TM_FE_NFFT: every read stays inside the ring), -> out[TM_FE_NMELS]. */
void tm_fe_frame(const int16_t *ring, uint32_t start, uint32_t mask, int8_t *out);

/* The int8 level of a mel power S (binary search in tm_fe_levels). */
int8_t tm_fe_level(float s);
#endif
