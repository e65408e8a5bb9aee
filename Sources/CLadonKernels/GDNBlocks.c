// The element-wise halves of LadonCore's fused GDN pass (`Kernels.gdn`): |x| packed into GEMM B panels, and
// y = x · (norm + beta) or x · (1 / (norm + beta)) once the GEMM has summed `norm`. Portable C the compiler
// vectorises; on x86-64 also compiled for AVX2 and AVX-512 and picked from CPUID. Same float32 operations as the
// Swift reference (no contraction).
#include "CLadonKernels.h"

#include <math.h>

#pragma clang fp contract(off)

static inline __attribute__((always_inline)) void pack_abs(float *dst, const float *x, ptrdiff_t stride,
                                                           ptrdiff_t rows, ptrdiff_t width, ptrdiff_t nr) {
    ptrdiff_t full = width / nr, tail = width - full * nr;
    for (ptrdiff_t p = 0; p < rows; p++) {
        const float *row = x + p * stride;
        float *out = dst + p * nr;
        for (ptrdiff_t q = 0; q < full; q++) {
            float *panel = out + q * rows * nr;
            const float *src = row + q * nr;
            for (ptrdiff_t j = 0; j < nr; j++) panel[j] = fabsf(src[j]);
        }
        if (tail > 0) {
            float *panel = out + full * rows * nr;
            for (ptrdiff_t j = 0; j < tail; j++) panel[j] = fabsf(row[full * nr + j]);
            for (ptrdiff_t j = tail; j < nr; j++) panel[j] = 0;
        }
    }
}

static inline __attribute__((always_inline)) void gdn_scale(float *y, const float *x, ptrdiff_t stride,
                                                            const float *norm, ptrdiff_t ldn, const float *beta,
                                                            ptrdiff_t channels, ptrdiff_t width, bool inverse) {
    for (ptrdiff_t c = 0; c < channels; c++) {
        const float *xs = x + c * stride, *ns = norm + c * ldn;
        float *ys = y + c * stride;
        float b = beta[c];
        if (inverse) {
            for (ptrdiff_t i = 0; i < width; i++) ys[i] = xs[i] * (ns[i] + b);
        } else {
            for (ptrdiff_t i = 0; i < width; i++) ys[i] = xs[i] * (1.0f / (ns[i] + b));
        }
    }
}

#define CLADON_ABS_ARGS float *dst, const float *x, ptrdiff_t stride, ptrdiff_t rows, ptrdiff_t width, ptrdiff_t nr
#define CLADON_ABS_CALL dst, x, stride, rows, width, nr
#define CLADON_SCALE_ARGS                                                                                     \
    float *y, const float *x, ptrdiff_t stride, const float *norm, ptrdiff_t ldn, const float *beta,          \
        ptrdiff_t channels, ptrdiff_t width, bool inverse
#define CLADON_SCALE_CALL y, x, stride, norm, ldn, beta, channels, width, inverse

#ifdef CLADON_KERNELS_X86
__attribute__((target("avx512f"))) static void pack_abs_avx512(CLADON_ABS_ARGS) { pack_abs(CLADON_ABS_CALL); }
__attribute__((target("avx2"))) static void pack_abs_avx2(CLADON_ABS_ARGS) { pack_abs(CLADON_ABS_CALL); }
__attribute__((target("avx512f"))) static void gdn_scale_avx512(CLADON_SCALE_ARGS) { gdn_scale(CLADON_SCALE_CALL); }
__attribute__((target("avx2"))) static void gdn_scale_avx2(CLADON_SCALE_ARGS) { gdn_scale(CLADON_SCALE_CALL); }
#endif

void cladon_pack_abs_panels(int level, CLADON_ABS_ARGS) {
#ifdef CLADON_KERNELS_X86
    int known = cladon_cpu_level();
    if (level >= 1 && level < known) known = level;
    if (known == 3) { pack_abs_avx512(CLADON_ABS_CALL); return; }
    if (known == 2) { pack_abs_avx2(CLADON_ABS_CALL); return; }
#endif
    pack_abs(CLADON_ABS_CALL);
}

void cladon_gdn_scale(int level, CLADON_SCALE_ARGS) {
#ifdef CLADON_KERNELS_X86
    int known = cladon_cpu_level();
    if (level >= 1 && level < known) known = level;
    if (known == 3) { gdn_scale_avx512(CLADON_SCALE_CALL); return; }
    if (known == 2) { gdn_scale_avx2(CLADON_SCALE_CALL); return; }
#endif
    gdn_scale(CLADON_SCALE_CALL);
}
