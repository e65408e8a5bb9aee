// Packing the im2col matrix of a convolution into GEMM panels, and the zero-bordered (stride-phase) copies
// of the input it reads from. Portable C: plain loops the compiler turns into vector moves on every target; on
// x86-64 each is also compiled for AVX2 and AVX-512 (per-function `target` attributes) and picked from CPUID.
#include "CPULevels.h"

#include <string.h>

/// How one panel of the block reads its row of a plane: one run, two runs (the panel crosses an output
/// row), or column by column.
typedef struct {
    ptrdiff_t first, second;  // start offsets of the runs
    ptrdiff_t split;          // columns in the first run (kind 1)
    ptrdiff_t count;          // valid columns (the rest are zero)
    int kind;                 // 0: one full run, 1: two runs filling the panel, 2: column by column
} PanelRead;

enum { panels_per_chunk = 256, matrix_rows_ahead = 4 };

static PanelRead classify_panel(const ptrdiff_t *columns, ptrdiff_t count, ptrdiff_t nr) {
    PanelRead read = {columns[0], 0, 0, count, 2};
    if (count != nr) return read;
    ptrdiff_t split = 1;
    while (split < nr && columns[split] == columns[0] + split) split++;
    if (split == nr) {
        read.kind = 0;
        return read;
    }
    // Two runs are read as two full-width blocks, from the first run's start and from `split` before the second
    // run's start; both stay between the first element and the last only when the second run starts at least
    // `split` past the first (any row-major plane: the next output row lies a whole row further on).
    if (columns[split] - columns[0] < split) return read;
    for (ptrdiff_t j = split + 1; j < nr; j++)
        if (columns[j] != columns[split] + (j - split)) return read;
    read.kind = 1;
    read.second = columns[split];
    read.split = split;
    return read;
}

static inline void pack_row_any(float *out, const float *row, const PanelRead *read, const ptrdiff_t *columns,
                                ptrdiff_t nr) {
    for (ptrdiff_t j = 0; j < read->count; j++) out[j] = row[columns[j]];
    for (ptrdiff_t j = read->count; j < nr; j++) out[j] = 0;
}

/// `out[j] = j < split ? a[j] : b[j]` for the 16 lanes starting at lane `base`: two loads and a masked merge.
static inline __attribute__((always_inline)) void select16(float *out, const float *a, const float *b,
                                                           ptrdiff_t split, int base) {
    const cladon_i16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    cladon_i16 take_a = (lane + base) < (int)split;  // -1 where lane + base < split
    cladon_i16 va = (cladon_i16)*(const cladon_f16 *)a, vb = (cladon_i16)*(const cladon_f16 *)b;
    *(cladon_f16 *)out = (cladon_f16)((va & take_a) | (vb & ~take_a));
}

/// One panel row of width `NR`: a full run is a fixed-size copy; two runs are two overlapping fixed-size
/// reads merged by a lane select (both inside the panel's first and last element, see `classify_panel`).
#define CLADON_PACK_ROW(NR)                                                                   \
    static inline __attribute__((always_inline)) void pack_row_##NR(                          \
        float *out, const float *row, const PanelRead *read, const ptrdiff_t *columns) {      \
        if (read->kind == 0) {                                                                \
            memcpy(out, row + read->first, (NR) * sizeof(float));                             \
        } else if (read->kind == 1) {                                                         \
            const float *a = row + read->first, *b = row + read->second - read->split;        \
            for (int j = 0; j < (NR); j += 16) select16(out + j, a + j, b + j, read->split, j);\
        } else {                                                                              \
            pack_row_any(out, row, read, columns, (NR));                                      \
        }                                                                                     \
    }
CLADON_PACK_ROW(16)
CLADON_PACK_ROW(32)

/// The packing loop, compiled once per instruction set below (inlined into each).
static inline __attribute__((always_inline)) void pack_panels(float *dst, const float *base,
                                                              const ptrdiff_t *row_offsets, ptrdiff_t kc,
                                                              const ptrdiff_t *column_offsets, ptrdiff_t nc,
                                                              ptrdiff_t nr) {
    PanelRead reads[panels_per_chunk];
    ptrdiff_t panels = (nc + nr - 1) / nr;
    for (ptrdiff_t q0 = 0; q0 < panels; q0 += panels_per_chunk) {
        ptrdiff_t q1 = q0 + panels_per_chunk < panels ? q0 + panels_per_chunk : panels;
        for (ptrdiff_t q = q0; q < q1; q++) {
            ptrdiff_t count = nc - q * nr < nr ? nc - q * nr : nr;
            reads[q - q0] = classify_panel(column_offsets + q * nr, count, nr);
        }
        // Row by row: each row reads one plane left to right, which the hardware prefetcher follows.
        for (ptrdiff_t r = 0; r < kc; r++) {
            const float *row = base + row_offsets[r];
            for (ptrdiff_t q = q0; q < q1; q++) {
                float *out = dst + (q * kc + r) * nr;
                const ptrdiff_t *columns = column_offsets + q * nr;
                if (nr == 16) pack_row_16(out, row, &reads[q - q0], columns);
                else if (nr == 32) pack_row_32(out, row, &reads[q - q0], columns);
                else pack_row_any(out, row, &reads[q - q0], columns, nr);
            }
        }
    }
}

// The same loop with 64-byte moves and merges (AVX-512) or 32-byte ones (AVX2), picked once from CPUID like the
// GEMM kernels; the portable build of this file only has 16-byte vectors.
#define CLADON_PANELS_ARGS                                                                                     \
    float *dst, const float *base, const ptrdiff_t *row_offsets, ptrdiff_t kc, const ptrdiff_t *column_offsets, \
        ptrdiff_t nc, ptrdiff_t nr
#define CLADON_PANELS_CALL dst, base, row_offsets, kc, column_offsets, nc, nr
CLADON_LEVEL_BUILDS(pack_panels, (CLADON_PANELS_ARGS), (CLADON_PANELS_CALL))

void cladon_pack_im2col_panels(CLADON_PANELS_ARGS) {
    cladon_pack_im2col_panels_at_level(0, CLADON_PANELS_CALL);
}

void cladon_pack_im2col_panels_at_level(int level, CLADON_PANELS_ARGS) {
    CLADON_RUN_AT_LEVEL(level, pack_panels, (CLADON_PANELS_CALL));
}

/// The plain-matrix packing loop (see ``cladon_pack_matrix_panels``), compiled once per instruction set below.
static inline __attribute__((always_inline)) void pack_matrix(float *dst, const float *b, ptrdiff_t ldb,
                                                              ptrdiff_t kc, ptrdiff_t nc, ptrdiff_t nr) {
    ptrdiff_t full = nc / nr, tail = nc - full * nr;
    for (ptrdiff_t p = 0; p < kc; p++) {
        const float *row = b + p * ldb;
        // Rows lie `ldb` apart, so the hardware prefetchers lose the stream at every row: ask for the row
        // `ahead` rows on, one request per cache line, while this one is copied.
        if (p + matrix_rows_ahead < kc) {
            const char *next = (const char *)(row + matrix_rows_ahead * ldb);
            for (ptrdiff_t byte = 0; byte < nc * (ptrdiff_t)sizeof(float); byte += 64) __builtin_prefetch(next + byte, 0, 3);
        }
        float *out = dst + p * nr;
        if (nr == 32) {
            for (ptrdiff_t q = 0; q < full; q++) memcpy(out + q * kc * 32, row + q * 32, 32 * sizeof(float));
        } else if (nr == 16) {
            for (ptrdiff_t q = 0; q < full; q++) memcpy(out + q * kc * 16, row + q * 16, 16 * sizeof(float));
        } else {
            for (ptrdiff_t q = 0; q < full; q++) memcpy(out + q * kc * nr, row + q * nr, (size_t)nr * sizeof(float));
        }
        if (tail > 0) {
            float *last = out + full * kc * nr;
            for (ptrdiff_t j = 0; j < tail; j++) last[j] = row[full * nr + j];
            for (ptrdiff_t j = tail; j < nr; j++) last[j] = 0;
        }
    }
}

CLADON_LEVEL_BUILDS(pack_matrix, (float *dst, const float *b, ptrdiff_t ldb, ptrdiff_t kc, ptrdiff_t nc, ptrdiff_t nr),
                    (dst, b, ldb, kc, nc, nr))

void cladon_pack_matrix_panels(int level, float *dst, const float *b, ptrdiff_t ldb, ptrdiff_t kc, ptrdiff_t nc,
                               ptrdiff_t nr) {
    CLADON_RUN_AT_LEVEL(level, pack_matrix, (dst, b, ldb, kc, nc, nr));
}

static inline __attribute__((always_inline)) void copy_plane(
    float *dst, ptrdiff_t height, ptrdiff_t width, ptrdiff_t top, ptrdiff_t left, const float *src,
    ptrdiff_t src_height, ptrdiff_t src_width, ptrdiff_t stride_y, ptrdiff_t stride_x, ptrdiff_t phase_y,
    ptrdiff_t phase_x) {
    // Rows and columns of the phase that lie in the image: phase row r reads image row r·sy + φy.
    ptrdiff_t rows = src_height > phase_y ? (src_height - phase_y + stride_y - 1) / stride_y : 0;
    ptrdiff_t cols = src_width > phase_x ? (src_width - phase_x + stride_x - 1) / stride_x : 0;
    if (rows > height - top) rows = height - top;
    if (cols > width - left) cols = width - left;
    if (rows < 0) rows = 0;
    if (cols < 0) cols = 0;
    memset(dst, 0, (size_t)(top * width) * sizeof(float));
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *out = dst + (top + r) * width;
        const float *in = src + (r * stride_y + phase_y) * src_width + phase_x;
        memset(out, 0, (size_t)left * sizeof(float));
        if (stride_x == 1) {
            memcpy(out + left, in, (size_t)cols * sizeof(float));
        } else if (stride_x == 2) {
            for (ptrdiff_t x = 0; x < cols; x++) out[left + x] = in[2 * x];
        } else {
            for (ptrdiff_t x = 0; x < cols; x++) out[left + x] = in[x * stride_x];
        }
        memset(out + left + cols, 0, (size_t)(width - left - cols) * sizeof(float));
    }
    memset(dst + (top + rows) * width, 0, (size_t)((height - top - rows) * width) * sizeof(float));
}

#define CLADON_PLANE_ARGS                                                                                      \
    float *dst, ptrdiff_t height, ptrdiff_t width, ptrdiff_t top, ptrdiff_t left, const float *src,           \
        ptrdiff_t src_height, ptrdiff_t src_width, ptrdiff_t stride_y, ptrdiff_t stride_x, ptrdiff_t phase_y,  \
        ptrdiff_t phase_x
#define CLADON_PLANE_CALL dst, height, width, top, left, src, src_height, src_width, stride_y, stride_x, phase_y, phase_x

CLADON_LEVEL_BUILDS(copy_plane, (CLADON_PLANE_ARGS), (CLADON_PLANE_CALL))

void cladon_copy_bordered_plane(CLADON_PLANE_ARGS) { CLADON_RUN_AT_LEVEL(0, copy_plane, (CLADON_PLANE_CALL)); }
