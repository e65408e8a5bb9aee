// The entropy bottleneck's quantisation of one latent plane, as `EntropyBottleneck.quantizeReference` computes it
// element by element: `roundHalfToEven(y − median)`, clamped to ±2^29 in float, minus the channel's table offset,
// clamped to the codable range. Portable C the compiler vectorises (`rint`, in the default round-to-nearest-even
// mode, is one `vroundps` with AVX); on x86-64 also compiled for AVX2 and AVX-512 and picked from CPUID.
#include "CPULevels.h"

#include <stdint.h>
#include <string.h>

#pragma clang fp contract(off)

/// One run of at most 2^31 values (so the escape count fits 32-bit lanes, which keeps the loop in full-width vectors).
static inline __attribute__((always_inline)) uint32_t quantize_run(int32_t *dst, const float *src, ptrdiff_t count,
                                                                   float median, int32_t offset, int32_t low,
                                                                   int32_t high, uint32_t escape, uint32_t *bad) {
    uint32_t escapes = 0, infinite_or_nan_seen = 0;
    for (ptrdiff_t i = 0; i < count; i++) {
        float y = src[i];
        uint32_t bits;
        memcpy(&bits, &y, sizeof bits);
        uint32_t infinite_or_nan = (bits & 0x7f800000u) == 0x7f800000u;
        infinite_or_nan_seen |= infinite_or_nan;
        float d = infinite_or_nan ? 0.0f : __builtin_rintf(y - median);
        d = d < -536870912.0f ? -536870912.0f : d;  // ±2^29: exact, and beyond any codable symbol
        d = d > 536870912.0f ? 536870912.0f : d;
        int32_t v = (int32_t)((uint32_t)(int32_t)d - (uint32_t)offset);
        v = v < low ? low : v;
        v = v > high ? high : v;
        dst[i] = v;
        escapes += (uint32_t)v >= escape;
    }
    *bad |= infinite_or_nan_seen;
    return escapes;
}

#define CLADON_QUANTIZE_ARGS                                                                                  \
    int32_t *dst, const float *src, ptrdiff_t count, float median, int32_t offset, int32_t low, int32_t high, \
        uint32_t escape, bool *non_finite, ptrdiff_t *escapes
#define CLADON_QUANTIZE_CALL dst, src, count, median, offset, low, high, escape, non_finite, escapes

/// The whole plane in runs of at most 2^31 values; `*escapes` and `*non_finite` as ``cladon_quantize_plane`` returns them.
static inline __attribute__((always_inline)) void quantize(CLADON_QUANTIZE_ARGS) {
    uint32_t bad = 0;
    ptrdiff_t total = 0;
    for (ptrdiff_t start = 0; start < count; start += (ptrdiff_t)1 << 31) {
        ptrdiff_t run = count - start < ((ptrdiff_t)1 << 31) ? count - start : (ptrdiff_t)1 << 31;
        total += quantize_run(dst + start, src + start, run, median, offset, low, high, escape, &bad);
    }
    *escapes = total;
    *non_finite = bad != 0;
}

CLADON_LEVEL_BUILDS(quantize, (CLADON_QUANTIZE_ARGS), (CLADON_QUANTIZE_CALL))

static void quantize_at(int level, CLADON_QUANTIZE_ARGS) { CLADON_RUN_AT_LEVEL(level, quantize, (CLADON_QUANTIZE_CALL)); }

ptrdiff_t cladon_quantize_plane(int level, int32_t *dst, const float *src, ptrdiff_t count, float median,
                                int32_t offset, int32_t low, int32_t high, uint32_t escape, bool *non_finite) {
    ptrdiff_t escapes = 0;
    quantize_at(level, dst, src, count, median, offset, low, high, escape, non_finite, &escapes);
    return escapes;
}
