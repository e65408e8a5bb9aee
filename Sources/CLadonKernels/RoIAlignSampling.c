// RoIAlign's bilinear sums over a channels-last feature map (the taps and weights come from LadonCore's
// `RoIAlignTaps`). Portable C with 16-float vectors; on x86-64 also compiled for AVX2 and AVX-512 and picked from
// CPUID. The float32 operations are torchvision's, in its order, never fused: `#pragma clang fp contract(off)`.
#include "CPULevels.h"

#pragma clang fp contract(off)

/// Vectors of 16 channels kept in registers per pass over a bin's taps: 8 × 16 = 128 channels, eight accumulators
/// and eight partial sums (16 zmm, or 32 ymm with AVX2 where the compiler spills a few).
enum { roi_vectors = 8 };

/// 16 floats from any 4-byte-aligned address (`cladon_f16` is declared with 4-byte alignment).
#define load16(p) (*(const cladon_f16 *)(p))

/// Channels `c0 ..< c0 + 16·V` of one bin, `V` vectors at a time: every tap row is read as one contiguous
/// run of `V` vectors, so a bin's 4 × samples rows stream through with many loads in flight.
#define ROI_BLOCK(V)                                                                                          \
    {                                                                                                         \
        cladon_f16 acc[V];                                                                                    \
        for (int v = 0; v < V; v++) acc[v] = (cladon_f16){0};                                                 \
        for (ptrdiff_t s = 0; s < samples_per_bin; s++) {                                                     \
            const int *p = pos + 4 * s;                                                                       \
            const float *w = wt + 4 * s;                                                                      \
            const float *r1 = input + (ptrdiff_t)p[0] * channels + c0;                                        \
            const float *r2 = input + (ptrdiff_t)p[1] * channels + c0;                                        \
            const float *r3 = input + (ptrdiff_t)p[2] * channels + c0;                                        \
            const float *r4 = input + (ptrdiff_t)p[3] * channels + c0;                                        \
            cladon_f16 w1 = (cladon_f16){0} + w[0], w2 = (cladon_f16){0} + w[1];                              \
            cladon_f16 w3 = (cladon_f16){0} + w[2], w4 = (cladon_f16){0} + w[3];                              \
            for (int v = 0; v < V; v++) {                                                                     \
                cladon_f16 t = w1 * load16(r1 + 16 * v);                                                      \
                t = t + w2 * load16(r2 + 16 * v);                                                             \
                t = t + w3 * load16(r3 + 16 * v);                                                             \
                t = t + w4 * load16(r4 + 16 * v);                                                             \
                acc[v] = acc[v] + t;                                                                          \
            }                                                                                                 \
        }                                                                                                     \
        for (int v = 0; v < V; v++) {                                                                         \
            cladon_f16 r = acc[v] / count;                                                                    \
            for (int i = 0; i < 16; i++) output[(c0 + 16 * v + i) * bins + bin] = r[i];                       \
        }                                                                                                     \
        c0 += 16 * V;                                                                                         \
    }

static inline __attribute__((always_inline)) void roi_align_cl(float *output, const float *input,
                                                               ptrdiff_t channels, const int *positions,
                                                               const float *weights, ptrdiff_t bins,
                                                               ptrdiff_t samples_per_bin, float count) {
    for (ptrdiff_t bin = 0; bin < bins; bin++) {
        const int *pos = positions + bin * samples_per_bin * 4;
        const float *wt = weights + bin * samples_per_bin * 4;
        ptrdiff_t c0 = 0;
        while (c0 + 16 * roi_vectors <= channels) ROI_BLOCK(roi_vectors)
        while (c0 + 16 <= channels) ROI_BLOCK(1)
        for (; c0 < channels; c0++) {
            float value = 0;
            for (ptrdiff_t s = 0; s < samples_per_bin; s++) {
                const int *p = pos + 4 * s;
                const float *w = wt + 4 * s;
                float t = w[0] * input[(ptrdiff_t)p[0] * channels + c0];
                t = t + w[1] * input[(ptrdiff_t)p[1] * channels + c0];
                t = t + w[2] * input[(ptrdiff_t)p[2] * channels + c0];
                t = t + w[3] * input[(ptrdiff_t)p[3] * channels + c0];
                value = value + t;
            }
            output[c0 * bins + bin] = value / count;
        }
    }
}

#define CLADON_ROI_ARGS                                                                                       \
    float *output, const float *input, ptrdiff_t channels, const int *positions, const float *weights,        \
        ptrdiff_t bins, ptrdiff_t samples_per_bin, float count
#define CLADON_ROI_CALL output, input, channels, positions, weights, bins, samples_per_bin, count

CLADON_LEVEL_BUILDS(roi_align_cl, (CLADON_ROI_ARGS), (CLADON_ROI_CALL))

void cladon_roi_align_channels_last(int level, CLADON_ROI_ARGS) {
    CLADON_RUN_AT_LEVEL(level, roi_align_cl, (CLADON_ROI_CALL));
}
