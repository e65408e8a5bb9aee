// Transposes in 8 x 8 blocks held in vector registers: the transposed GEMM B packing (a Linear layer's input,
// `B = xᵀ`) and the transpose of `W·xᵀ` back into `[N, out]`. Portable C with 8-float vectors (one ymm, two xmm);
// on x86-64 also compiled for AVX2 and AVX-512 and picked from CPUID.
#include "CPULevels.h"

typedef float tr_f8 __attribute__((vector_size(32), aligned(4)));

/// `dst[c * ldd + r] = src[r * lds + c]` for r, c < 8: three rounds of two-vector shuffles (pairs of floats, then
/// pairs of pairs, then halves), the network of `_mm256_unpacklo_ps` / `shuffle_ps` / `permute2f128_ps`.
static inline __attribute__((always_inline)) void transpose8x8(const float *src, ptrdiff_t lds, float *dst,
                                                               ptrdiff_t ldd) {
    tr_f8 r0 = *(const tr_f8 *)(src + 0 * lds), r1 = *(const tr_f8 *)(src + 1 * lds);
    tr_f8 r2 = *(const tr_f8 *)(src + 2 * lds), r3 = *(const tr_f8 *)(src + 3 * lds);
    tr_f8 r4 = *(const tr_f8 *)(src + 4 * lds), r5 = *(const tr_f8 *)(src + 5 * lds);
    tr_f8 r6 = *(const tr_f8 *)(src + 6 * lds), r7 = *(const tr_f8 *)(src + 7 * lds);
    tr_f8 s0 = __builtin_shufflevector(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13);
    tr_f8 s1 = __builtin_shufflevector(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
    tr_f8 s2 = __builtin_shufflevector(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13);
    tr_f8 s3 = __builtin_shufflevector(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
    tr_f8 s4 = __builtin_shufflevector(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13);
    tr_f8 s5 = __builtin_shufflevector(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
    tr_f8 s6 = __builtin_shufflevector(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13);
    tr_f8 s7 = __builtin_shufflevector(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
    tr_f8 u0 = __builtin_shufflevector(s0, s2, 0, 1, 8, 9, 4, 5, 12, 13);
    tr_f8 u1 = __builtin_shufflevector(s0, s2, 2, 3, 10, 11, 6, 7, 14, 15);
    tr_f8 u2 = __builtin_shufflevector(s1, s3, 0, 1, 8, 9, 4, 5, 12, 13);
    tr_f8 u3 = __builtin_shufflevector(s1, s3, 2, 3, 10, 11, 6, 7, 14, 15);
    tr_f8 u4 = __builtin_shufflevector(s4, s6, 0, 1, 8, 9, 4, 5, 12, 13);
    tr_f8 u5 = __builtin_shufflevector(s4, s6, 2, 3, 10, 11, 6, 7, 14, 15);
    tr_f8 u6 = __builtin_shufflevector(s5, s7, 0, 1, 8, 9, 4, 5, 12, 13);
    tr_f8 u7 = __builtin_shufflevector(s5, s7, 2, 3, 10, 11, 6, 7, 14, 15);
    *(tr_f8 *)(dst + 0 * ldd) = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
    *(tr_f8 *)(dst + 1 * ldd) = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
    *(tr_f8 *)(dst + 2 * ldd) = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
    *(tr_f8 *)(dst + 3 * ldd) = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
    *(tr_f8 *)(dst + 4 * ldd) = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
    *(tr_f8 *)(dst + 5 * ldd) = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
    *(tr_f8 *)(dst + 6 * ldd) = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
    *(tr_f8 *)(dst + 7 * ldd) = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
}

/// `dst[j * ldd + i] = src[i * lds + j]` for `i < rows`, `j < cols`: 8 x 8 register blocks, scalar edges.
static inline __attribute__((always_inline)) void transpose_block(float *dst, ptrdiff_t ldd, const float *src,
                                                                  ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t cols) {
    ptrdiff_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        ptrdiff_t j = 0;
        for (; j + 8 <= cols; j += 8) transpose8x8(src + i * lds + j, lds, dst + j * ldd + i, ldd);
        for (; j < cols; j++)
            for (ptrdiff_t r = i; r < i + 8; r++) dst[j * ldd + r] = src[r * lds + j];
    }
    for (; i < rows; i++)
        for (ptrdiff_t j = 0; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
}

/// Rows `row_begin ..< row_end` of `src` (`rows x columns`, row-major) into `dst` (`columns x rows`).
static inline __attribute__((always_inline)) void transpose_rows(float *dst, const float *src, ptrdiff_t rows,
                                                                 ptrdiff_t columns, ptrdiff_t row_begin,
                                                                 ptrdiff_t row_end) {
    transpose_block(dst + row_begin, rows, src + row_begin * columns, columns, row_end - row_begin, columns);
}

/// The transposed B panels: `dst[(q * kc + p) * nr + j] = b[(q * nr + j) * ldb + p]`, zero past `nc`.
static inline __attribute__((always_inline)) void pack_transposed(float *dst, const float *b, ptrdiff_t ldb,
                                                                  ptrdiff_t kc, ptrdiff_t nc, ptrdiff_t nr) {
    for (ptrdiff_t q = 0; q * nr < nc; q++) {
        ptrdiff_t cols = nc - q * nr < nr ? nc - q * nr : nr;
        float *panel = dst + q * kc * nr;
        transpose_block(panel, nr, b + q * nr * ldb, ldb, cols, kc);
        if (cols < nr)
            for (ptrdiff_t p = 0; p < kc; p++)
                for (ptrdiff_t j = cols; j < nr; j++) panel[p * nr + j] = 0;
    }
}

#define CLADON_TR_ARGS                                                                                        \
    float *dst, const float *src, ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t row_begin, ptrdiff_t row_end
#define CLADON_TR_CALL dst, src, rows, columns, row_begin, row_end
#define CLADON_PT_ARGS float *dst, const float *b, ptrdiff_t ldb, ptrdiff_t kc, ptrdiff_t nc, ptrdiff_t nr
#define CLADON_PT_CALL dst, b, ldb, kc, nc, nr

CLADON_LEVEL_BUILDS(transpose_rows, (CLADON_TR_ARGS), (CLADON_TR_CALL))
CLADON_LEVEL_BUILDS(pack_transposed, (CLADON_PT_ARGS), (CLADON_PT_CALL))

void cladon_transpose_rows(int level, CLADON_TR_ARGS) { CLADON_RUN_AT_LEVEL(level, transpose_rows, (CLADON_TR_CALL)); }

void cladon_pack_transposed_panels(int level, CLADON_PT_ARGS) {
    CLADON_RUN_AT_LEVEL(level, pack_transposed, (CLADON_PT_CALL));
}
