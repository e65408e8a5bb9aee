// The input and output transforms of the Winograd convolutions (LadonCore's Conv2d+Winograd.swift) for F(2×2, 3×3)
// (tiles every 2 columns) and F(3×3, 2×2) (every 3): `V = Bᵀ d B` of every 4 × 4 input tile of one channel,
// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]], and `Y = Aᵀ M A` of one output channel's tiles.
// Portable C with 16- and 8-float vectors, sixteen or eight tiles per step; on x86-64 also compiled for AVX2 and
// AVX-512 and picked from CPUID. Only additions and subtractions, in the order of the plain references
// (`WinogradGeometry.inputTransformReference`, `outputTransformReference`), so every build gives the same bits.
#include "CPULevels.h"

#include <string.h>

#pragma clang fp contract(off)

static inline __attribute__((always_inline)) cladon_f16 wt_load(const float *p) { return *(const cladon_f16 *)p; }
static inline __attribute__((always_inline)) void wt_store(float *p, cladon_f16 v) { *(cladon_f16 *)p = v; }

/// `Bᵀ d` of one tile row: input rows `d0 … d3` (NULL where outside the image, read as zeros) combined column by
/// column into the padded rows `t0 … t3` at columns `0 ..< w`. Sixteen columns per step, the last step moved back to
/// end at `w` (columns written twice get the same values); narrower rows column by column.
static inline __attribute__((always_inline)) void wt_combine_rows(const float *d0, const float *d1, const float *d2,
                                                                  const float *d3, const float *zeros, ptrdiff_t w,
                                                                  float *t0, float *t1, float *t2, float *t3) {
    const float *a0p = d0 ? d0 : zeros, *a1p = d1 ? d1 : zeros, *a2p = d2 ? d2 : zeros, *a3p = d3 ? d3 : zeros;
    if (w >= 16) {
        for (ptrdiff_t c = 0;; c += 16) {
            if (c + 16 > w) c = w - 16;
            cladon_f16 a0 = wt_load(a0p + c), a1 = wt_load(a1p + c), a2 = wt_load(a2p + c), a3 = wt_load(a3p + c);
            wt_store(t0 + c, a0 - a2);
            wt_store(t1 + c, a1 + a2);
            wt_store(t2 + c, a2 - a1);
            wt_store(t3 + c, a1 - a3);
            if (c + 16 == w) return;
        }
    }
    for (ptrdiff_t c = 0; c < w; c++) {
        float a0 = a0p[c], a1 = a1p[c], a2 = a2p[c], a3 = a3p[c];
        t0[c] = a0 - a2;
        t1[c] = a1 + a2;
        t2[c] = a2 - a1;
        t3[c] = a1 - a3;
    }
}

/// The four outputs of a tile's (or lane-wise, several tiles') columns `c0 … c3` of one row of `Bᵀ d`.
#define WT_STORE_COLUMNS(type, o0, o1, o2, o3, c0, c1, c2, c3)                                                \
    do {                                                                                                      \
        *(type *)(o0) = (c0) - (c2);                                                                          \
        *(type *)(o1) = (c1) + (c2);                                                                          \
        *(type *)(o2) = (c2) - (c1);                                                                          \
        *(type *)(o3) = (c1) - (c3);                                                                          \
    } while (0)

/// Sixteen tiles from `tx` on (`s = f + m·tx`): the columns `m·tx + j` of sixteen tiles are the lanes `j, j + m, …`
/// of the floats from `s` on, for m = 2 the even and odd lanes of two vectors, for m = 3 every third lane of three
/// (the fourth column being the first shifted by one tile).
static inline __attribute__((always_inline)) void wt_columns16(const float *s, ptrdiff_t m, float *o0, float *o1,
                                                               float *o2, float *o3) {
    if (m == 2) {
        cladon_f16 a = wt_load(s), b = wt_load(s + 16), c = wt_load(s + 2), d = wt_load(s + 18);
        cladon_f16 c0 = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        cladon_f16 c1 = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        cladon_f16 c2 = __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        cladon_f16 c3 = __builtin_shufflevector(c, d, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        WT_STORE_COLUMNS(cladon_f16, o0, o1, o2, o3, c0, c1, c2, c3);
    } else {
        cladon_f16 a = wt_load(s), b = wt_load(s + 16), c = wt_load(s + 32), e = wt_load(s + 48);
        // Lanes 0 … 10 (0 … 9 for c2) from a and b (floats 0 … 31), the rest from c (floats 32 … 47).
        cladon_f16 ab0 = __builtin_shufflevector(a, b, 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0, 0, 0, 0, 0);
        cladon_f16 ab1 = __builtin_shufflevector(a, b, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 0, 0, 0, 0, 0);
        cladon_f16 ab2 = __builtin_shufflevector(a, b, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0, 0, 0, 0, 0, 0);
        cladon_f16 c0 = __builtin_shufflevector(ab0, c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17, 20, 23, 26, 29);
        cladon_f16 c1 = __builtin_shufflevector(ab1, c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 18, 21, 24, 27, 30);
        cladon_f16 c2 = __builtin_shufflevector(ab2, c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 19, 22, 25, 28, 31);
        cladon_f16 c3 = __builtin_shufflevector(c0, e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        WT_STORE_COLUMNS(cladon_f16, o0, o1, o2, o3, c0, c1, c2, c3);
    }
}

typedef float wt_f8 __attribute__((vector_size(32), aligned(4)));

/// Eight tiles from `tx` on, as ``wt_columns16`` (rows of 8 to 15 tiles: layer3's 26 × 26 maps have 13).
static inline __attribute__((always_inline)) void wt_columns8(const float *s, ptrdiff_t m, float *o0, float *o1,
                                                              float *o2, float *o3) {
    if (m == 2) {
        wt_f8 a = *(const wt_f8 *)s, b = *(const wt_f8 *)(s + 8), c = *(const wt_f8 *)(s + 2), d = *(const wt_f8 *)(s + 10);
        wt_f8 c0 = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        wt_f8 c1 = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
        wt_f8 c2 = __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14);
        wt_f8 c3 = __builtin_shufflevector(c, d, 1, 3, 5, 7, 9, 11, 13, 15);
        WT_STORE_COLUMNS(wt_f8, o0, o1, o2, o3, c0, c1, c2, c3);
    } else {
        wt_f8 a = *(const wt_f8 *)s, b = *(const wt_f8 *)(s + 8), c = *(const wt_f8 *)(s + 16), e = *(const wt_f8 *)(s + 24);
        wt_f8 ab0 = __builtin_shufflevector(a, b, 0, 3, 6, 9, 12, 15, 0, 0);
        wt_f8 ab1 = __builtin_shufflevector(a, b, 1, 4, 7, 10, 13, 0, 0, 0);
        wt_f8 ab2 = __builtin_shufflevector(a, b, 2, 5, 8, 11, 14, 0, 0, 0);
        wt_f8 c0 = __builtin_shufflevector(ab0, c, 0, 1, 2, 3, 4, 5, 10, 13);
        wt_f8 c1 = __builtin_shufflevector(ab1, c, 0, 1, 2, 3, 4, 8, 11, 14);
        wt_f8 c2 = __builtin_shufflevector(ab2, c, 0, 1, 2, 3, 4, 9, 12, 15);
        wt_f8 c3 = __builtin_shufflevector(c0, e, 1, 2, 3, 4, 5, 6, 7, 8);
        WT_STORE_COLUMNS(wt_f8, o0, o1, o2, o3, c0, c1, c2, c3);
    }
}

/// `· B` of one padded row `f` for every tile of a tile row: tile `tx` combines columns `m·tx … m·tx + 3` into
/// `o[j · xi_stride + tx]`, `j` = 0 … 3. Sixteen tiles per step (eight in rows of 8 to 15), the last step moved back
/// to end at `tw` (tiles written twice get the same values); rows under 8 tiles one tile at a time.
static inline __attribute__((always_inline)) void wt_combine_columns(const float *f, ptrdiff_t m, ptrdiff_t tw,
                                                                     float *o, ptrdiff_t xi_stride) {
    float *o0 = o, *o1 = o + xi_stride, *o2 = o + 2 * xi_stride, *o3 = o + 3 * xi_stride;
    ptrdiff_t step = tw >= 16 ? 16 : tw >= 8 ? 8 : 0;
    if (step) {
        for (ptrdiff_t tx = 0;; tx += step) {
            if (tx + step > tw) tx = tw - step;
            if (step == 16) wt_columns16(f + m * tx, m, o0 + tx, o1 + tx, o2 + tx, o3 + tx);
            else wt_columns8(f + m * tx, m, o0 + tx, o1 + tx, o2 + tx, o3 + tx);
            if (tx + step == tw) return;
        }
    }
    for (ptrdiff_t tx = 0; tx < tw; tx++) {
        float c0 = f[m * tx], c1 = f[m * tx + 1], c2 = f[m * tx + 2], c3 = f[m * tx + 3];
        o0[tx] = c0 - c2;
        o1[tx] = c1 + c2;
        o2[tx] = c2 - c1;
        o3[tx] = c1 - c3;
    }
}

#define CLADON_WT_ARGS                                                                                        \
    float *v, ptrdiff_t xi_stride, const float *x, ptrdiff_t h, ptrdiff_t w, ptrdiff_t m, ptrdiff_t padding, \
        ptrdiff_t tw, ptrdiff_t ty_begin, ptrdiff_t ty_end, float *rows
#define CLADON_WT_CALL v, xi_stride, x, h, w, m, padding, tw, ty_begin, ty_end, rows

static inline __attribute__((always_inline)) void winograd_input(CLADON_WT_ARGS) {
    ptrdiff_t span = cladon_winograd_row_span(m, tw);
    float *zeros = rows + 4 * span;
    memset(rows, 0, (size_t)(5 * span) * sizeof(float));
    float *t0 = rows + padding, *t1 = t0 + span, *t2 = t1 + span, *t3 = t2 + span;
    for (ptrdiff_t ty = ty_begin; ty < ty_end; ty++) {
        ptrdiff_t y0 = m * ty - padding;
        const float *d[4];
        for (ptrdiff_t i = 0; i < 4; i++) d[i] = y0 + i >= 0 && y0 + i < h ? x + (y0 + i) * w : NULL;
        wt_combine_rows(d[0], d[1], d[2], d[3], zeros, w, t0, t1, t2, t3);
        float *out = v + (ty - ty_begin) * tw;
        for (ptrdiff_t i = 0; i < 4; i++) wt_combine_columns(rows + i * span, m, tw, out + i * 4 * xi_stride, xi_stride);
    }
}

CLADON_LEVEL_BUILDS(winograd_input, (CLADON_WT_ARGS), (CLADON_WT_CALL))

void cladon_winograd_input_transform(int level, CLADON_WT_ARGS) {
    CLADON_RUN_AT_LEVEL(level, winograd_input, (CLADON_WT_CALL));
}

// The output transform `Y = Aᵀ M A` of one output channel, then `+ bias`, `+ residual` and ReLU in the GEMM
// epilogue's order (`v > 0 ? v : 0`). F(2, 3): Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]; F(3, 2): Aᵀ = [[1, 1, 1, 0],
// [0, 1, −1, 0], [0, 1, 1, 1]]. The same additions, in the same order, as the plain reference
// (`WinogradGeometry.outputTransformReference`), whatever the vector width.

/// The 2 × 2 outputs of F(2, 3) from the 16 values `e[ξ]` of a tile (or lane-wise, of several tiles).
#define WT_OUTPUTS2(T, e, y00, y01, y10, y11)                                                                 \
    T r00_ = e[0] + e[4] + e[8], r01_ = e[1] + e[5] + e[9], r02_ = e[2] + e[6] + e[10];                       \
    T r03_ = e[3] + e[7] + e[11];                                                                             \
    T r10_ = e[4] - e[8] - e[12], r11_ = e[5] - e[9] - e[13], r12_ = e[6] - e[10] - e[14];                    \
    T r13_ = e[7] - e[11] - e[15];                                                                            \
    T y00 = r00_ + r01_ + r02_, y01 = r01_ - r02_ - r03_, y10 = r10_ + r11_ + r12_, y11 = r11_ - r12_ - r13_

/// The 3 × 3 outputs `y[i][j]` of F(3, 2) from the 16 values `e[ξ]` of a tile (or lane-wise, of several tiles):
/// `Aᵀ M` row by row over M's rows, then each row's four columns `(a, b, c, d)` as `(a + b + c, b − c, b + c + d)`.
#define WT_OUTPUTS3(T, e, y)                                                                                  \
    T s0_ = e[4] + e[8], s1_ = e[5] + e[9], s2_ = e[6] + e[10], s3_ = e[7] + e[11];                          \
    T rows_[3][4] = {{e[0] + s0_, e[1] + s1_, e[2] + s2_, s3_ + e[3]},                                        \
                     {e[4] - e[8], e[5] - e[9], e[6] - e[10], e[7] - e[11]},                                  \
                     {s0_ + e[12], s1_ + e[13], s2_ + e[14], s3_ + e[15]}};                                   \
    for (int i_ = 0; i_ < 3; i_++) {                                                                          \
        y[i_][0] = rows_[i_][0] + rows_[i_][1] + rows_[i_][2];                                                \
        y[i_][1] = rows_[i_][1] - rows_[i_][2];                                                               \
        y[i_][2] = rows_[i_][1] + rows_[i_][2] + rows_[i_][3];                                                \
    }

/// `out[k] = relu?(v[k] + bias + residual[k])` for the 16 (8) values of `v`; `residual` may be NULL.
static inline __attribute__((always_inline)) void wt_finish16(float *out, const float *residual, cladon_f16 v,
                                                              float bias, bool relu) {
    v = v + bias;
    if (residual) v = v + wt_load(residual);
    if (relu) v = (cladon_f16)((cladon_i16)v & (cladon_i16)(v > 0));
    wt_store(out, v);
}

typedef int wt_i8 __attribute__((vector_size(32), aligned(4)));

static inline __attribute__((always_inline)) void wt_finish8(float *out, const float *residual, wt_f8 v, float bias,
                                                             bool relu) {
    v = v + bias;
    if (residual) v = v + *(const wt_f8 *)residual;
    if (relu) v = (wt_f8)((wt_i8)v & (wt_i8)(v > 0));
    *(wt_f8 *)out = v;
}

/// Sixteen whole tiles from `p` (their values `p[ξ · xi_stride]`) into the map at `out` (their first output), with
/// `residual` at the same offset (or NULL): each output row's 32 (m = 2) or 48 (m = 3) floats interleaved from the
/// tiles' columns.
static inline __attribute__((always_inline)) void wt_output_tiles16(float *out, const float *residual, ptrdiff_t ow,
                                                                    const float *p, ptrdiff_t xi_stride, ptrdiff_t m,
                                                                    float bias, bool relu) {
    cladon_f16 e[16];
    for (int xi = 0; xi < 16; xi++) e[xi] = wt_load(p + xi * xi_stride);
    if (m == 2) {
        WT_OUTPUTS2(cladon_f16, e, y00, y01, y10, y11);
        cladon_f16 rows[2][2] = {
            {__builtin_shufflevector(y00, y01, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
             __builtin_shufflevector(y00, y01, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)},
            {__builtin_shufflevector(y10, y11, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
             __builtin_shufflevector(y10, y11, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)}};
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++)
                wt_finish16(out + i * ow + 16 * k, residual ? residual + i * ow + 16 * k : NULL, rows[i][k], bias, relu);
    } else {
        cladon_f16 y[3][3];
        WT_OUTPUTS3(cladon_f16, e, y);
        for (int i = 0; i < 3; i++) {
            cladon_f16 a = y[i][0], b = y[i][1], c = y[i][2];
            // Lanes a_t, b_t, c_t of tile t at 3t, 3t + 1, 3t + 2: the a and b lanes first, then the c lanes.
            cladon_f16 ab0 = __builtin_shufflevector(a, b, 0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5);
            cladon_f16 ab1 = __builtin_shufflevector(a, b, 21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26);
            cladon_f16 ab2 = __builtin_shufflevector(a, b, 0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0);
            cladon_f16 row[3] = {
                __builtin_shufflevector(ab0, c, 0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15),
                __builtin_shufflevector(ab1, c, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15),
                __builtin_shufflevector(ab2, c, 26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31)};
            for (int k = 0; k < 3; k++)
                wt_finish16(out + i * ow + 16 * k, residual ? residual + i * ow + 16 * k : NULL, row[k], bias, relu);
        }
    }
}

/// Eight whole tiles, as ``wt_output_tiles16`` (rows of 8 to 15 whole tiles).
static inline __attribute__((always_inline)) void wt_output_tiles8(float *out, const float *residual, ptrdiff_t ow,
                                                                   const float *p, ptrdiff_t xi_stride, ptrdiff_t m,
                                                                   float bias, bool relu) {
    wt_f8 e[16];
    for (int xi = 0; xi < 16; xi++) e[xi] = *(const wt_f8 *)(p + xi * xi_stride);
    if (m == 2) {
        WT_OUTPUTS2(wt_f8, e, y00, y01, y10, y11);
        cladon_f16 rows[2] = {
            __builtin_shufflevector(y00, y01, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15),
            __builtin_shufflevector(y10, y11, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)};
        for (int i = 0; i < 2; i++)
            wt_finish16(out + i * ow, residual ? residual + i * ow : NULL, rows[i], bias, relu);
    } else {
        wt_f8 y[3][3];
        WT_OUTPUTS3(wt_f8, e, y);
        for (int i = 0; i < 3; i++) {
            wt_f8 a = y[i][0], b = y[i][1], c = y[i][2];
            wt_f8 ab0 = __builtin_shufflevector(a, b, 0, 8, 0, 1, 9, 0, 2, 10);
            wt_f8 ab1 = __builtin_shufflevector(a, b, 0, 3, 11, 0, 4, 12, 0, 5);
            wt_f8 ab2 = __builtin_shufflevector(a, b, 13, 0, 6, 14, 0, 7, 15, 0);
            wt_f8 row[3] = {__builtin_shufflevector(ab0, c, 0, 1, 8, 3, 4, 9, 6, 7),
                            __builtin_shufflevector(ab1, c, 10, 1, 2, 11, 4, 5, 12, 7),
                            __builtin_shufflevector(ab2, c, 0, 13, 2, 3, 14, 5, 6, 15)};
            for (int k = 0; k < 3; k++)
                wt_finish8(out + i * ow + 8 * k, residual ? residual + i * ow + 8 * k : NULL, row[k], bias, relu);
        }
    }
}

/// One tile `tx` of tile row `ty` one value at a time, the outputs outside the `oh × ow` map dropped.
static inline __attribute__((always_inline)) void wt_output_tile(float *out, const float *residual, ptrdiff_t oh,
                                                                 ptrdiff_t ow, const float *p, ptrdiff_t xi_stride,
                                                                 ptrdiff_t m, ptrdiff_t ty, ptrdiff_t tx, float bias,
                                                                 bool relu) {
    float e[16], y[3][3];
    for (int xi = 0; xi < 16; xi++) e[xi] = p[xi * xi_stride];
    if (m == 2) {
        WT_OUTPUTS2(float, e, y00, y01, y10, y11);
        y[0][0] = y00, y[0][1] = y01, y[1][0] = y10, y[1][1] = y11;
    } else {
        WT_OUTPUTS3(float, e, y);
    }
    for (ptrdiff_t i = 0; i < m && m * ty + i < oh; i++)
        for (ptrdiff_t j = 0; j < m && m * tx + j < ow; j++) {
            ptrdiff_t at = (m * ty + i) * ow + m * tx + j;
            float v = y[i][j] + bias;
            if (residual) v += residual[at];
            out[at] = relu ? (v > 0 ? v : 0) : v;
        }
}

#define CLADON_WO_ARGS                                                                                        \
    float *out, const float *products, ptrdiff_t xi_stride, ptrdiff_t m, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t tw, \
        ptrdiff_t ty_begin, ptrdiff_t ty_end, float bias, const float *residual, bool relu
#define CLADON_WO_CALL out, products, xi_stride, m, oh, ow, tw, ty_begin, ty_end, bias, residual, relu

/// Whole tiles (all m × m outputs inside the map) `widest` (16 or 8) at a time (eight in rows of 8 to 15), the last
/// step moved back to end at the last whole tile (tiles written twice get the same values); the rest one tile at a time.
static inline __attribute__((always_inline)) void winograd_output_steps(CLADON_WO_ARGS, ptrdiff_t widest) {
    ptrdiff_t whole = ow / m < tw ? ow / m : tw;
    ptrdiff_t step = whole >= 16 && widest >= 16 ? 16 : whole >= 8 ? 8 : 0;
    for (ptrdiff_t ty = ty_begin; ty < ty_end; ty++) {
        const float *p = products + (ty - ty_begin) * tw;
        ptrdiff_t done = 0;
        if (step && m * ty + m <= oh) {
            for (ptrdiff_t tx = 0;; tx += step) {
                if (tx + step > whole) tx = whole - step;
                ptrdiff_t at = m * ty * ow + m * tx;
                if (step == 16) wt_output_tiles16(out + at, residual ? residual + at : NULL, ow, p + tx, xi_stride, m, bias, relu);
                else wt_output_tiles8(out + at, residual ? residual + at : NULL, ow, p + tx, xi_stride, m, bias, relu);
                if (tx + step == whole) break;
            }
            done = whole;
        }
        for (ptrdiff_t tx = done; tx < tw; tx++) wt_output_tile(out, residual, oh, ow, p + tx, xi_stride, m, ty, tx, bias, relu);
    }
}

// Sixteen tiles per step with AVX-512 (the 16 products of sixteen tiles in 16 of its 32 zmm registers); eight with AVX2
// and the baseline, whose 16 vector registers the sixteen-tile step (32 ymm of products) overflowed:
// KernelPerfTests/winogradTransforms, AVX2 build, 0.78-0.95x the time of sixteen-tile steps (docs/performance.md,
// twenty-fourth session).
static inline __attribute__((always_inline)) void winograd_output(CLADON_WO_ARGS) {
    winograd_output_steps(CLADON_WO_CALL, 8);
}

#ifdef CLADON_KERNELS_X86
CLADON_TARGET_AVX512 static void winograd_output_avx512(CLADON_WO_ARGS) { winograd_output_steps(CLADON_WO_CALL, 16); }
__attribute__((target("avx2"))) static void winograd_output_avx2(CLADON_WO_ARGS) { winograd_output_steps(CLADON_WO_CALL, 8); }
#endif

void cladon_winograd_output_transform(int level, CLADON_WO_ARGS) {
    CLADON_RUN_AT_LEVEL(level, winograd_output, (CLADON_WO_CALL));
}
