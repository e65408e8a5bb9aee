// The element-wise halves of LadonCore's fused GDN pass (`Kernels.gdn`): |x| packed into GEMM B panels, and
// y = x · (norm + beta) or x · (1 / (norm + beta)) once the GEMM has summed `norm`. Portable C the compiler
// vectorises; on x86-64 also compiled for AVX2 and AVX-512 and picked from CPUID. Same float32 operations as the
// Swift reference (no contraction).
#include "CPULevels.h"

#include <math.h>

#pragma clang fp contract(off)

// Explicit vectors (`cladon_f16`) rather than loops left to the auto-vectoriser: `y` may be `x` (GDN in place), and a
// loop over possibly overlapping arrays is vectorised behind a run-time overlap check that sends the in-place call
// down the scalar path.

/// |v| lane by lane: the sign bits cleared (a macro: a vector-valued function draws an ABI warning in the baseline build).
#define abs16(v) ((cladon_f16)((cladon_i16)(v) & 0x7fffffff))

static inline __attribute__((always_inline)) void pack_abs(float *dst, const float *x, ptrdiff_t stride,
                                                           ptrdiff_t rows, ptrdiff_t width, ptrdiff_t nr) {
    ptrdiff_t full = nr % 16 == 0 ? width / nr : 0, tail_start = full * nr;
    for (ptrdiff_t p = 0; p < rows; p++) {
        const float *row = x + p * stride;
        float *out = dst + p * nr;
        for (ptrdiff_t q = 0; q < full; q++) {
            float *panel = out + q * rows * nr;
            const float *src = row + q * nr;
            for (ptrdiff_t j = 0; j < nr; j += 16) *(cladon_f16 *)(panel + j) = abs16(*(const cladon_f16 *)(src + j));
        }
        for (ptrdiff_t j0 = tail_start; j0 < width; j0 += nr) {  // partial panel (or any nr not a multiple of 16)
            float *panel = out + j0 / nr * rows * nr;
            ptrdiff_t count = width - j0 < nr ? width - j0 : nr;
            for (ptrdiff_t j = 0; j < count; j++) panel[j] = fabsf(row[j0 + j]);
            for (ptrdiff_t j = count; j < nr; j++) panel[j] = 0;
        }
    }
}

static inline __attribute__((always_inline)) void gdn_scale(float *y, const float *x, ptrdiff_t stride,
                                                            const float *norm, ptrdiff_t ldn, const float *beta,
                                                            ptrdiff_t channels, ptrdiff_t width, bool inverse) {
    ptrdiff_t vector_end = width / 16 * 16;
    for (ptrdiff_t c = 0; c < channels; c++) {
        const float *xs = x + c * stride, *ns = norm + c * ldn;
        float *ys = y + c * stride;
        float b = beta[c];
        cladon_f16 bv = (cladon_f16){0} + b, one = (cladon_f16){0} + 1.0f;
        if (inverse) {
            for (ptrdiff_t i = 0; i < vector_end; i += 16)
                *(cladon_f16 *)(ys + i) = *(const cladon_f16 *)(xs + i) * (*(const cladon_f16 *)(ns + i) + bv);
            for (ptrdiff_t i = vector_end; i < width; i++) ys[i] = xs[i] * (ns[i] + b);
        } else {
            for (ptrdiff_t i = 0; i < vector_end; i += 16)
                *(cladon_f16 *)(ys + i) = *(const cladon_f16 *)(xs + i) * (one / (*(const cladon_f16 *)(ns + i) + bv));
            for (ptrdiff_t i = vector_end; i < width; i++) ys[i] = xs[i] * (1.0f / (ns[i] + b));
        }
    }
}

#define CLADON_ABS_ARGS float *dst, const float *x, ptrdiff_t stride, ptrdiff_t rows, ptrdiff_t width, ptrdiff_t nr
#define CLADON_ABS_CALL dst, x, stride, rows, width, nr
#define CLADON_SCALE_ARGS                                                                                     \
    float *y, const float *x, ptrdiff_t stride, const float *norm, ptrdiff_t ldn, const float *beta,          \
        ptrdiff_t channels, ptrdiff_t width, bool inverse
#define CLADON_SCALE_CALL y, x, stride, norm, ldn, beta, channels, width, inverse

CLADON_LEVEL_BUILDS(pack_abs, (CLADON_ABS_ARGS), (CLADON_ABS_CALL))
CLADON_LEVEL_BUILDS(gdn_scale, (CLADON_SCALE_ARGS), (CLADON_SCALE_CALL))

void cladon_pack_abs_panels(int level, CLADON_ABS_ARGS) { CLADON_RUN_AT_LEVEL(level, pack_abs, (CLADON_ABS_CALL)); }

void cladon_gdn_scale(int level, CLADON_SCALE_ARGS) { CLADON_RUN_AT_LEVEL(level, gdn_scale, (CLADON_SCALE_CALL)); }
