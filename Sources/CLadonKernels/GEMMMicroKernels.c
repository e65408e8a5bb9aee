// x86-64 GEMM micro-kernels with per-function target attributes, bit-identical to LadonCore's Swift kernels
// built with LADON_FMA: each element is `acc = fma(a[i], b[j], acc)` over p = 0..<kc in order, then
// `+ C`, `+ bias`, `+ residual`, ReLU (`x > 0 ? x : 0`, so NaN and -0 become +0), in that order.
#include "CLadonKernels.h"
#include "CPULevels.h"

#ifdef CLADON_KERNELS_X86
#include <immintrin.h>
#ifdef CLADON_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES  // `_mm512_*` and `__m512` from SIMDe, built from AVX2 + FMA (see CPULevels.h)
#include <simde/x86/avx512.h>
#endif

bool cladon_cpu_has_avx512f(void) {
#ifdef CLADON_EMULATE_AVX512
    return cladon_cpu_has_avx2_fma();
#else
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#endif
}

bool cladon_avx512_is_emulated(void) {
#ifdef CLADON_EMULATE_AVX512
    return true;
#else
    return false;
#endif
}

bool cladon_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int cladon_cpu_level(void) {
    static int level = 0;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known == 0) {  // racing first calls store the same value
        known = cladon_cpu_has_avx512f() ? 3 : cladon_cpu_has_avx2_fma() ? 2 : 1;
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    return known;
}

/// Writes the valid `rows x cols` corner of a computed tile (leading dimension `ldt`) to `c`.
static void copy_edge_tile(const float *tile, ptrdiff_t ldt, float *c, ptrdiff_t ldc, ptrdiff_t rows,
                           ptrdiff_t cols, bool load_c, const CLadonEpilogue *epilogue) {
    for (ptrdiff_t i = 0; i < rows; i++) {
        float *crow = c + i * ldc;
        const float *trow = tile + i * ldt;
        for (ptrdiff_t j = 0; j < cols; j++) {
            float v = trow[j];
            if (load_c) v += crow[j];
            if (epilogue) {
                if (epilogue->bias) v += epilogue->bias[i];
                if (epilogue->residual) v += epilogue->residual[i * epilogue->ldr + j];
                if (epilogue->relu) v = v > 0 ? v : 0;
                if (epilogue->gdn) v = crow[j] * (epilogue->gdn == 2 ? v : 1.0f / v);
            }
            crow[j] = v;
        }
    }
}

/// Asks for one row of a C tile (its first and last of `width` floats), written or loaded at the tile's end.
static inline void prefetch_c_row(const float *row, ptrdiff_t width) {
    __builtin_prefetch(row, 1, 3);
    __builtin_prefetch(row + width - 1, 1, 3);
}

/// Asks for the `rows` rows of a C tile (`width` floats each) while the depth loop runs: the rows lie
/// `ldc` apart, so the hardware prefetcher does not fetch them, and a tile that is loaded (`load_c`) or written
/// would otherwise wait on L2 or L3 at the end of every call.
static inline void prefetch_c_tile(const float *c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t width) {
    for (ptrdiff_t i = 0; i < rows; i++) prefetch_c_row(c + i * ldc, width);
}

/// A GEMM tile's depth loop: `STEP` (one depth step) `kc` times, asking for the C tile's rows one per step over the
/// first `rows` steps, or for all of them before the loop when the depth block is shorter than the tile. Uses `kc`,
/// `c`, `ldc`, `rows` and `cols` of the enclosing tile function.
#define CLADON_DEPTH_LOOP(STEP)                                                                \
    {                                                                                          \
        ptrdiff_t p = 0;                                                                       \
        if (kc >= rows) {                                                                      \
            for (; p < rows; p++) {                                                            \
                prefetch_c_row(c + p * ldc, cols);                                             \
                STEP                                                                           \
            }                                                                                  \
        } else {                                                                               \
            prefetch_c_tile(c, ldc, rows, cols);                                               \
        }                                                                                      \
        for (; p < kc; p++) STEP                                                               \
    }

/// The direct tiles' version (two column halves at `c_low`, `c_high`): `c_rows_spread` steps of the tap loop ask for
/// one C row each (``CLADON_DIRECT_PREFETCH_C_ROW``), `rows` of them when the loop's `STEPS` steps, less its look-ahead
/// of `AHEAD` steps, are that many; otherwise the whole tile is asked for now. A step is a tap (look-ahead 32), or a
/// run of five taps in the AVX2 run-of-five tile (look-ahead 6). Against asking for all of it at once, alternated in one process (15 rounds
/// of 8 timings): AVX-512 tiles on the Intel VM `encoder.0` + GDN 0.974–0.977 of the time on two threads and 0.982 on
/// one, `encoder.2` + GDN 0.999–1.002, the whole encoder 0.986–0.998 (twenty-second session; on Zen 4 the encoder in
/// `ladon infer` 0.98–0.99); AVX2 tiles (`avx2-6x16` forced on Zen 4) the whole encoder 0.991–0.995 on one thread and
/// 0.981–0.992 on two (twenty-third session).
#define CLADON_DIRECT_PREFETCH_C(STEPS, AHEAD)                                                 \
    ptrdiff_t c_rows_spread = (STEPS) - (AHEAD) >= rows ? rows : 0;                            \
    if (!c_rows_spread) {                                                                      \
        prefetch_c_tile(c_low, ldc, rows, low_cols);                                           \
        if (high_cols > 0) prefetch_c_tile(c_high, ldc, rows, high_cols);                      \
    }
/// Step `t`'s share of ``CLADON_DIRECT_PREFETCH_C``.
#define CLADON_DIRECT_PREFETCH_C_ROW(t)                                                        \
    if ((t) < c_rows_spread) {                                                                 \
        prefetch_c_row(c_low + (t) * ldc, low_cols);                                           \
        if (high_cols > 0) prefetch_c_row(c_high + (t) * ldc, high_cols);                      \
    }

/// The epilogue of the tile at (`row`, `column`) of a block whose epilogue is `e` (NULL stays NULL).
static inline const CLadonEpilogue *epilogue_at(const CLadonEpilogue *e, ptrdiff_t row, ptrdiff_t column,
                                                CLadonEpilogue *storage) {
    if (!e) return NULL;
    storage->bias = e->bias ? e->bias + row : NULL;
    storage->residual = e->residual ? e->residual + row * e->ldr + column : NULL;
    storage->ldr = e->ldr;
    storage->relu = e->relu;
    storage->gdn = e->gdn;
    return storage;
}

/// The body of a `cladon_gemm_block_*` function: columns outer, rows inner, so each `NR`-column B panel stays in L1
/// while every row panel of the block runs against it; `TILE` is the one-tile kernel.
#define CLADON_BLOCK_LOOP(TILE, MR, NR)                                                                        \
    for (ptrdiff_t jr = 0; jr < nc; jr += (NR)) {                                                              \
        ptrdiff_t cols = nc - jr < (NR) ? nc - jr : (NR);                                                      \
        for (ptrdiff_t ir = 0; ir < mc; ir += (MR)) {                                                          \
            CLadonEpilogue storage;                                                                            \
            TILE(kc, a + ir * kc, b + jr * kc, c + ir * ldc + jr, ldc, mc - ir < (MR) ? mc - ir : (MR), cols,  \
                 load_c, epilogue_at(epilogue, ir, jr, &storage), tile);                                       \
        }                                                                                                      \
    }

// MARK: AVX-512

CLADON_TARGET_AVX512
static inline void store16_avx512(__m512 x, float *dst, ptrdiff_t row, ptrdiff_t column, bool load_c,
                                  const CLadonEpilogue *epilogue) {
    if (load_c) x = _mm512_add_ps(x, _mm512_loadu_ps(dst));
    if (epilogue) {
        if (epilogue->bias) x = _mm512_add_ps(x, _mm512_set1_ps(epilogue->bias[row]));
        if (epilogue->residual)
            x = _mm512_add_ps(x, _mm512_loadu_ps(epilogue->residual + row * epilogue->ldr + column));
        if (epilogue->relu) x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), x);
        if (epilogue->gdn)
            x = _mm512_mul_ps(_mm512_loadu_ps(dst), epilogue->gdn == 2 ? x : _mm512_div_ps(_mm512_set1_ps(1.0f), x));
    }
    _mm512_storeu_ps(dst, x);
}

// The per-row pieces of the AVX-512 kernels, for tiles `W` = 32 columns wide (two zmm accumulators per row) or 16 (one).
#define CLADON_ACC512_32(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0;
#define CLADON_ACC512_16(i) __m512 c##i##0 = _mm512_setzero_ps();
#define CLADON_LOAD_B512_32 __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#define CLADON_LOAD_B512_16 __m512 b0 = _mm512_loadu_ps(b);
#define CLADON_ROW512_32(i)                                                   \
    {                                                                         \
        __m512 x = _mm512_set1_ps(a[i]);                                      \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                            \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                            \
    }
#define CLADON_ROW512_16(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, c##i##0);
#define CLADON_STORE512_32(i)                                                          \
    store16_avx512(c##i##0, dst + (i) * ld, i, 0, from_c, vector_epilogue);           \
    store16_avx512(c##i##1, dst + (i) * ld + 16, i, 16, from_c, vector_epilogue);
#define CLADON_STORE512_16(i) store16_avx512(c##i##0, dst + (i) * ld, i, 0, from_c, vector_epilogue);

#define CLADON_ROWS4(M) M(0) M(1) M(2) M(3)
#define CLADON_ROWS6(M) CLADON_ROWS4(M) M(4) M(5)
#define CLADON_ROWS8(M) CLADON_ROWS4(M) M(4) M(5) M(6) M(7)
#define CLADON_ROWS12(M) CLADON_ROWS8(M) M(8) M(9) M(10) M(11)

/// The end of a GEMM tile kernel of `R` rows × `W` columns: a full tile (`rows` = `R`, `cols` = `W`) goes straight to `c`
/// (`+ C` when `load_c`, then `epilogue`); an edge tile goes through `tile` and its valid corner is copied element-wise.
#define CLADON_STORE_TILE512(R, W)                                                                             \
    {                                                                                                          \
        bool full = rows == (R) && cols == (W);                                                                \
        float *dst = full ? c : tile;                                                                          \
        ptrdiff_t ld = full ? ldc : 32;                                                                        \
        const CLadonEpilogue *vector_epilogue = full ? epilogue : NULL;                                        \
        bool from_c = full && load_c;                                                                          \
        CLADON_ROWS##R(CLADON_STORE512_##W)                                                                    \
        if (!full) copy_edge_tile(tile, 32, c, ldc, rows, cols, load_c, epilogue);                            \
    }

/// One depth step of an `R`×`W` tile: a row of packed B, every row's FMAs, both pointers on. It also asks for the A
/// values 16 steps ahead (768 bytes; a prefetch past the panel's end is harmless): alternated in one process against
/// none on the Intel AVX-512 VM, the layer2–4 shapes ran 1.003–1.023× on one thread (two runs) and 1.000–1.020× on two,
/// the encoder 1.000–1.001× (docs/performance.md, twenty-second session).
#define CLADON_STEP512(R, W)                                                                                   \
    {                                                                                                          \
        __builtin_prefetch(a + 16 * 12, 0, 3);                                                                 \
        CLADON_LOAD_B512_##W                                                                                   \
        CLADON_ROWS##R(CLADON_ROW512_##W)                                                                      \
        a += 12;                                                                                               \
        b += 32;                                                                                               \
    }

/// `gemm_RxW_avx512`: the tile's first `R` rows and `W` columns. `R` = 12, or 4 / 8 for the bottom edge: a tile of at
/// most that many valid rows reads only the first `R` values of each 12-value A group (M = 256 ends on a 4-row tile,
/// M = 128 on an 8-row one). `W` = 32, or 16 for a tile of at most 16 valid columns, which reads only the first half
/// of each 32-value B row (a 13 × 13 map, N = 169 = 5 · 32 + 9, ends every layer4 GEMM on one). `R · W / 16`
/// accumulators; every element is the same FMA chain in all variants. The C tile's rows are asked for one per depth step
/// over the first `rows` steps (``CLADON_DEPTH_LOOP``) rather than all 24 lines at once, which filled the core's
/// line-fill buffers and stalled the first steps (`perf annotate`, M = 512, K = 128, N = 2704: ~5 % of the samples on the prefetch instructions). Same
/// bits. Alternated in one process on the Intel AVX-512 VM, speed against the burst: that shape 0.99–1.05× on one
/// thread (median 1.03 over seven runs), the other layer2–4 shapes 0.96–1.09× (about 1.00–1.01), the encoder 0.99–1.00×.
#define CLADON_KERNEL512(R, W)                                                                                 \
    CLADON_TARGET_AVX512 static inline void gemm_##R##x##W##_avx512(                                          \
        ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols,  \
        bool load_c, const CLadonEpilogue *epilogue, float *tile) {                                            \
        CLADON_ROWS##R(CLADON_ACC512_##W)                                                                      \
        CLADON_DEPTH_LOOP(CLADON_STEP512(R, W))                                                                \
        CLADON_STORE_TILE512(R, W)                                                                             \
    }

CLADON_KERNEL512(4, 32)
CLADON_KERNEL512(8, 32)
CLADON_KERNEL512(12, 32)
CLADON_KERNEL512(4, 16)
CLADON_KERNEL512(8, 16)
CLADON_KERNEL512(12, 16)

CLADON_TARGET_AVX512
void cladon_gemm_12x32_avx512(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                              ptrdiff_t rows, ptrdiff_t cols, bool load_c, const CLadonEpilogue *epilogue,
                              float *tile) {
    if (cols <= 16) {
        if (rows <= 4) gemm_4x16_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
        else if (rows <= 8) gemm_8x16_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
        else gemm_12x16_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
        return;
    }
    if (rows <= 4) gemm_4x32_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
    else if (rows <= 8) gemm_8x32_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
    else gemm_12x32_avx512(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
}

CLADON_TARGET_AVX512
void cladon_gemm_block_12x32_avx512(ptrdiff_t kc, const float *a, ptrdiff_t mc, const float *b, ptrdiff_t nc, float *c,
                                    ptrdiff_t ldc, bool load_c, const CLadonEpilogue *epilogue, float *tile) {
    CLADON_BLOCK_LOOP(cladon_gemm_12x32_avx512, 12, 32)
}

/// The full-width 12×32 tile that packs its own B panel: row `p` of the panel is read from the unpacked matrix
/// (`b_src + p·ldb`, 32 consecutive values), stored to `b_dst + 32·p` for the block's other row tiles, and multiplied
/// as ``gemm_12x32_avx512`` multiplies a packed row: the same FMA chains, so the same bits. The loads of a separate
/// packing pass, which streams `B` from L3 or memory while the FMA units wait, overlap this tile's FMAs instead.
/// `rows` ≤ 12 (an edge tile goes through `tile`, as in the packed kernel; `a` holds 12-value groups either way).
CLADON_TARGET_AVX512
static void gemm_12x32_packing_b_avx512(ptrdiff_t kc, const float *a, const float *b_src, ptrdiff_t ldb, float *b_dst,
                                        float *c, ptrdiff_t ldc, ptrdiff_t rows, bool load_c,
                                        const CLadonEpilogue *epilogue, float *tile) {
    enum { rows_ahead = 24 };  // source rows lie `ldb` apart: ask for the one `rows_ahead` on (both ends of its 32 values)
    CLADON_ROWS12(CLADON_ACC512_32)
    prefetch_c_tile(c, ldc, rows, 32);
    for (ptrdiff_t p = 0; p < kc; p++) {
        const float *row = b_src + p * ldb;
        if (p + rows_ahead < kc) {
            __builtin_prefetch(row + rows_ahead * ldb);
            __builtin_prefetch(row + rows_ahead * ldb + 31);
        }
        __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16);
        _mm512_storeu_ps(b_dst, b0);
        _mm512_storeu_ps(b_dst + 16, b1);
        CLADON_ROWS12(CLADON_ROW512_32)
        a += 12;
        b_dst += 32;
    }
    const ptrdiff_t cols = 32;
    CLADON_STORE_TILE512(12, 32)
}

CLADON_TARGET_AVX512
void cladon_gemm_block_12x32_packing_b_avx512(ptrdiff_t kc, const float *a, ptrdiff_t mc, const float *b_src,
                                              ptrdiff_t ldb, ptrdiff_t nc, float *b_dst, float *c, ptrdiff_t ldc,
                                              bool load_c, const CLadonEpilogue *epilogue, float *tile) {
    for (ptrdiff_t jr = 0; jr < nc; jr += 32) {
        ptrdiff_t cols = nc - jr < 32 ? nc - jr : 32;
        float *panel = b_dst + jr * kc;
        ptrdiff_t first = 0;
        CLadonEpilogue storage;
        if (cols == 32 && mc > 0) {
            gemm_12x32_packing_b_avx512(kc, a, b_src + jr, ldb, panel, c + jr, ldc, mc < 12 ? mc : 12, load_c,
                                        epilogue_at(epilogue, 0, jr, &storage), tile);
            first = 12;
        } else {
            cladon_pack_matrix_panels(0, panel, b_src + jr, ldb, kc, cols, 32);  // the narrower last panel, zero-padded
        }
        for (ptrdiff_t ir = first; ir < mc; ir += 12) {
            cladon_gemm_12x32_avx512(kc, a + ir * kc, panel, c + ir * ldc + jr, ldc, mc - ir < 12 ? mc - ir : 12, cols,
                                     load_c, epilogue_at(epilogue, ir, jr, &storage), tile);
        }
    }
}

// MARK: AVX-512 direct convolution

/// The direct tiles' tap loop: per tap, the low and high 16-column input vectors `b0`, `b1` at `offsets[t]`, then
/// `ROWS` (every row's two FMAs) and `ADVANCE` (the weight pointers' step). As in the AVX2 kernel, the input lines of the
/// tap 32 ahead are asked for: `low` and `low + 16` cover the 16 floats of the low half wherever they start in a line,
/// `high + 15` the rest of a plain tile's 32. The first `c_rows_spread` taps each ask for one row of the C tile's two
/// halves (``CLADON_DIRECT_PREFETCH_C``).
#define CLADON_DIRECT_TAPS512(ROWS, ADVANCE)                                                   \
    {                                                                                          \
        enum { distance = 32 };                                                                \
        ptrdiff_t t = 0;                                                                       \
        for (; t < taps - distance; t++) {                                                     \
            ptrdiff_t o = offsets[t], ahead = offsets[t + distance];                           \
            CLADON_DIRECT_PREFETCH_C_ROW(t)                                                    \
            __builtin_prefetch(low + ahead);                                                   \
            __builtin_prefetch(low + ahead + 16);                                              \
            __builtin_prefetch(high + ahead + 15);                                             \
            __m512 b0 = _mm512_loadu_ps(low + o), b1 = _mm512_loadu_ps(high + o);              \
            ROWS                                                                               \
            ADVANCE                                                                            \
        }                                                                                      \
        for (; t < taps; t++) {                                                                \
            ptrdiff_t o = offsets[t];                                                          \
            __m512 b0 = _mm512_loadu_ps(low + o), b1 = _mm512_loadu_ps(high + o);              \
            ROWS                                                                               \
            ADVANCE                                                                            \
        }                                                                                      \
    }
/// The direct tiles' store: a full tile of `R` rows × 32 columns of C stored like the GEMM kernel's; otherwise the two
/// 16-column halves through `tile`. `EACH_ROW` is `CLADON_ROWS6` or `CLADON_ROWS12`.
#define CLADON_DIRECT_STORE512(EACH_ROW, R)                                                    \
    {                                                                                          \
        bool full = rows == (R) && low_cols == 16 && high_cols == 16 && c_high == c_low + 16;  \
        float *dst = full ? c_low : tile;                                                      \
        ptrdiff_t ld = full ? ldc : 32;                                                        \
        const CLadonEpilogue *vector_epilogue = full ? epilogue : NULL;                        \
        bool from_c = full && load_c;                                                          \
        EACH_ROW(CLADON_STORE512_32)                                                           \
        if (!full) {                                                                           \
            CLadonEpilogue storage;                                                            \
            copy_edge_tile(tile, 32, c_low, ldc, rows, low_cols, load_c, epilogue);            \
            copy_edge_tile(tile + 16, 32, c_high, ldc, rows, high_cols, load_c,                \
                           epilogue_at(epilogue, 0, c_high - c_low, &storage));                \
        }                                                                                      \
    }

CLADON_TARGET_AVX512
void cladon_conv_direct_6x32_avx512(ptrdiff_t taps, const ptrdiff_t *offsets, const float *low, const float *high,
                                    const float *weights, float *c_low, float *c_high, ptrdiff_t ldc, ptrdiff_t rows,
                                    ptrdiff_t low_cols, ptrdiff_t high_cols, bool load_c,
                                    const CLadonEpilogue *epilogue, float *tile) {
    CLADON_ROWS6(CLADON_ACC512_32)
    CLADON_DIRECT_PREFETCH_C(taps, 32)
    const float *a = weights;
    CLADON_DIRECT_TAPS512(CLADON_ROWS6(CLADON_ROW512_32), a += 6;)
    CLADON_DIRECT_STORE512(CLADON_ROWS6, 6)
}

/// Two consecutive 6-channel blocks of ``cladon_conv_direct_6x32_avx512`` at once: 12 channels × 32 columns, 24
/// accumulators. Rows 0–5 take their weights from `weights`, rows 6–11 from `weights + block_stride` (the next block
/// of the same packing), so per tap two input loads feed 24 FMAs instead of 12: the 6-row kernel reloads each input
/// vector for every block. Each element is the same FMA chain over the taps, so the bits are the 6-row kernel's.
/// Always 12 rows (the caller runs a remainder of fewer channels on the 6-row kernel).
CLADON_TARGET_AVX512
static void conv_direct_12x32_avx512(ptrdiff_t taps, const ptrdiff_t *offsets, const float *low, const float *high,
                                     const float *weights, ptrdiff_t block_stride, float *c_low, float *c_high,
                                     ptrdiff_t ldc, ptrdiff_t low_cols, ptrdiff_t high_cols, bool load_c,
                                     const CLadonEpilogue *epilogue, float *tile) {
    const ptrdiff_t rows = 12;
    CLADON_ROWS12(CLADON_ACC512_32)
    CLADON_DIRECT_PREFETCH_C(taps, 32)
    const float *a0 = weights, *a1 = weights + block_stride;
    // Row i's weight of the current tap: compile-time row index, so each is one broadcast.
#define CLADON_ROW_PAIR(i)                                                    \
    {                                                                         \
        __m512 x = _mm512_set1_ps((i) < 6 ? a0[(i) % 6] : a1[(i) % 6]);      \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                            \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                            \
    }
    CLADON_DIRECT_TAPS512(CLADON_ROWS12(CLADON_ROW_PAIR), a0 += 6; a1 += 6;)
#undef CLADON_ROW_PAIR
    CLADON_DIRECT_STORE512(CLADON_ROWS12, 12)
}

/// Defines `cladon_conv_direct_tiles_##ISA` (declared in CLadonKernels.h) and its per-tile GDN. For each tile, `KERNEL`
/// (tiles of two `HALF`-column halves) runs against every 6-channel block in turn (with `PAIR_ROWS`, `PAIR` takes two
/// blocks at once while 12 or more channels remain; `CLADON_NO_PAIR` where the ISA has no 12-row kernel); then, with
/// `gdn_gamma`, the tile's columns go through the GDN over all `channels` in place, exactly as the GDN computes it on
/// the whole map: |x| into one `2·HALF`-wide panel, `BLOCK` (the GEMM block loop whose panels `gdn_gamma` is packed for)
/// with the scale as its epilogue; the C routines at CPU level `LEVEL`. `gdn_scratch` holds `channels · 2·HALF` floats.
/// `SETUP` (statements, may be empty) runs once per call, before the tiles, for what `KERNEL` reads.
#define CLADON_NO_PAIR(...) ((void)0)
#define CLADON_DIRECT_TILES(ISA, TARGET, KERNEL, PAIR, PAIR_ROWS, BLOCK, LEVEL, HALF, SETUP)                   \
    TARGET static void direct_tile_gdn_##ISA(const float *gamma, const float *beta, bool inverse, float *scratch, \
                                             float *x, ptrdiff_t plane, ptrdiff_t channels, ptrdiff_t width,   \
                                             float *tile) {                                                    \
        if (width <= 0) return;                                                                                \
        /* |x| packed; then gamma·|x|, each finished tile of sums scaling its x (C) in place: no norm block. */ \
        cladon_pack_abs_panels(LEVEL, scratch, x, plane, channels, width, 2 * (HALF));                         \
        CLadonEpilogue scale = {.bias = beta, .gdn = inverse ? 2 : 1};                                         \
        BLOCK(channels, gamma, channels, scratch, width, x, plane, false, &scale, tile);                        \
    }                                                                                                          \
    TARGET void cladon_conv_direct_tiles_##ISA(                                                                \
        ptrdiff_t taps, const ptrdiff_t *offsets, const CLadonDirectTile *tiles, ptrdiff_t tile_count,         \
        const float *weights, ptrdiff_t block_stride, ptrdiff_t channels, float *out, ptrdiff_t plane,         \
        bool load_c, const CLadonEpilogue *epilogue, const float *gdn_gamma, const float *gdn_beta,            \
        bool gdn_inverse, float *gdn_scratch, float *tile) {                                                   \
        SETUP                                                                                                  \
        for (ptrdiff_t t = 0; t < tile_count; t++) {                                                           \
            const CLadonDirectTile *d = &tiles[t];                                                             \
            for (ptrdiff_t channel = 0; channel < channels;) {                                                 \
                float *c = out + channel * plane;                                                              \
                CLadonEpilogue storage;                                                                        \
                const float *w = weights + channel / 6 * block_stride;                                         \
                if ((PAIR_ROWS) && channels - channel >= 12) {                                                 \
                    PAIR(taps, offsets, d->low, d->high, w, block_stride, c + d->c_low, c + d->c_high, plane,  \
                         d->low_cols, d->high_cols, load_c, epilogue_at(epilogue, channel, d->c_low, &storage), \
                         tile);                                                                                \
                    channel += 12;                                                                             \
                    continue;                                                                                  \
                }                                                                                              \
                KERNEL(taps, offsets, d->low, d->high, w, c + d->c_low, c + d->c_high, plane,                  \
                       channels - channel < 6 ? channels - channel : 6, d->low_cols, d->high_cols, load_c,     \
                       epilogue_at(epilogue, channel, d->c_low, &storage), tile);                              \
                channel += 6;                                                                                  \
            }                                                                                                  \
            if (!gdn_gamma) continue;                                                                          \
            /* A plain tile is one run of columns; a pair of row tails is two. */                              \
            bool one_run = d->c_high == d->c_low + (HALF) && d->low_cols == (HALF);                            \
            direct_tile_gdn_##ISA(gdn_gamma, gdn_beta, gdn_inverse, gdn_scratch, out + d->c_low, plane,        \
                                  channels, one_run ? (HALF) + d->high_cols : d->low_cols, tile);             \
            if (!one_run)                                                                                      \
                direct_tile_gdn_##ISA(gdn_gamma, gdn_beta, gdn_inverse, gdn_scratch, out + d->c_high, plane,   \
                                      channels, d->high_cols, tile);                                           \
        }                                                                                                      \
    }

CLADON_DIRECT_TILES(avx512, CLADON_TARGET_AVX512, cladon_conv_direct_6x32_avx512, conv_direct_12x32_avx512, 1,
                    cladon_gemm_block_12x32_avx512, 3, 16, )

// MARK: AVX2 + FMA

__attribute__((target("avx2,fma")))
static inline void store8_avx2(__m256 x, float *dst, ptrdiff_t row, ptrdiff_t column, bool load_c,
                               const CLadonEpilogue *epilogue) {
    if (load_c) x = _mm256_add_ps(x, _mm256_loadu_ps(dst));
    if (epilogue) {
        if (epilogue->bias) x = _mm256_add_ps(x, _mm256_set1_ps(epilogue->bias[row]));
        if (epilogue->residual)
            x = _mm256_add_ps(x, _mm256_loadu_ps(epilogue->residual + row * epilogue->ldr + column));
        if (epilogue->relu) x = _mm256_and_ps(x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
        if (epilogue->gdn)
            x = _mm256_mul_ps(_mm256_loadu_ps(dst), epilogue->gdn == 2 ? x : _mm256_div_ps(_mm256_set1_ps(1.0f), x));
    }
    _mm256_storeu_ps(dst, x);
}

#define CLADON_ROW256(i)                                                      \
    {                                                                         \
        __m256 x = _mm256_broadcast_ss(a + (i));                              \
        c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                            \
        c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                            \
    }
#define CLADON_STORE256(i)                                                         \
    store8_avx2(c##i##0, dst + (i) * ld, i, 0, from_c, vector_epilogue);           \
    store8_avx2(c##i##1, dst + (i) * ld + 8, i, 8, from_c, vector_epilogue);
/// Stores the twelve accumulators: a full tile straight to `C` (`+ C` when `load_c`, then `epilogue`), any other to
/// `tile` as they are, for the caller to copy its valid part.
#define CLADON_STORE_6X16(FULL, C)                                                 \
    {                                                                              \
        float *dst = (FULL) ? (C) : tile;                                          \
        ptrdiff_t ld = (FULL) ? ldc : 16;                                          \
        const CLadonEpilogue *vector_epilogue = (FULL) ? epilogue : NULL;          \
        bool from_c = (FULL) && load_c;                                            \
        CLADON_STORE256(0) CLADON_STORE256(1) CLADON_STORE256(2)                   \
        CLADON_STORE256(3) CLADON_STORE256(4) CLADON_STORE256(5)                   \
    }

/// One depth step of the 6×16 tile: a row of packed B, the six rows' FMAs, both pointers on. It asks for the A values
/// 16 steps ahead (384 bytes), as the AVX-512 tile does.
#define CLADON_STEP256                                                        \
    {                                                                         \
        __builtin_prefetch(a + 16 * 6, 0, 3);                                 \
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);          \
        CLADON_ROW256(0) CLADON_ROW256(1) CLADON_ROW256(2)                    \
        CLADON_ROW256(3) CLADON_ROW256(4) CLADON_ROW256(5)                    \
        a += 6;                                                               \
        b += 16;                                                              \
    }
/// The 6×16 AVX2 tile. Its C rows are asked for one per depth step over the first `rows` steps (all at once when the
/// depth block is shorter; ``CLADON_DEPTH_LOOP``), as in the AVX-512 tile. Same bits. Against asking for the whole C
/// tile at once and no A prefetch, alternated in one process with `avx2-6x16` forced on Zen 4 (AMD EPYC family 25
/// model 17), three runs: layer2–4 shapes 0.998–1.042× the speed on one thread, 1.003–1.044× on two (l4 3×3
/// 1.02–1.04×; twenty-third session, docs/performance.md).
__attribute__((target("avx2,fma")))
static inline void gemm_6x16_avx2(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                                  ptrdiff_t rows, ptrdiff_t cols, bool load_c, const CLadonEpilogue *epilogue,
                                  float *tile) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    CLADON_DEPTH_LOOP(CLADON_STEP256)
    bool full = rows == 6 && cols == 16;
    CLADON_STORE_6X16(full, c)
    if (!full) copy_edge_tile(tile, 16, c, ldc, rows, cols, load_c, epilogue);
}

__attribute__((target("avx2,fma")))
void cladon_gemm_6x16_avx2(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                           ptrdiff_t rows, ptrdiff_t cols, bool load_c, const CLadonEpilogue *epilogue,
                           float *tile) {
    gemm_6x16_avx2(kc, a, b, c, ldc, rows, cols, load_c, epilogue, tile);
}

__attribute__((target("avx2,fma")))
void cladon_gemm_block_6x16_avx2(ptrdiff_t kc, const float *a, ptrdiff_t mc, const float *b, ptrdiff_t nc, float *c,
                                 ptrdiff_t ldc, bool load_c, const CLadonEpilogue *epilogue, float *tile) {
    CLADON_BLOCK_LOOP(gemm_6x16_avx2, 6, 16)
}

// MARK: AVX2 + FMA direct convolution

/// One tap of the 6×16 direct tile: the 8 input columns at `L` and at `H`, the six rows' FMAs, the weights on.
#define CLADON_DIRECT_TAP256(L, H)                                            \
    {                                                                         \
        __m256 b0 = _mm256_loadu_ps(L), b1 = _mm256_loadu_ps(H);              \
        CLADON_ROW256(0) CLADON_ROW256(1) CLADON_ROW256(2)                    \
        CLADON_ROW256(3) CLADON_ROW256(4) CLADON_ROW256(5)                    \
        a += 6;                                                               \
    }
/// The 6×16 direct tile's store: one 16-column tile in C, stored like the GEMM kernel's; otherwise two 8-column halves
/// through `tile` (the high half's residual lies where its output does, `c_high − c_low` further on).
#define CLADON_DIRECT_STORE256                                                                 \
    {                                                                                          \
        bool full = rows == 6 && low_cols == 8 && high_cols == 8 && c_high == c_low + 8;       \
        CLADON_STORE_6X16(full, c_low)                                                         \
        if (!full) {                                                                           \
            CLadonEpilogue storage;                                                            \
            copy_edge_tile(tile, 16, c_low, ldc, rows, low_cols, load_c, epilogue);            \
            copy_edge_tile(tile + 8, 16, c_high, ldc, rows, high_cols, load_c,                 \
                           epilogue_at(epilogue, 0, c_high - c_low, &storage));                \
        }                                                                                      \
    }

__attribute__((target("avx2,fma")))
void cladon_conv_direct_6x16_avx2(ptrdiff_t taps, const ptrdiff_t *offsets, const float *low, const float *high,
                                  const float *weights, float *c_low, float *c_high, ptrdiff_t ldc, ptrdiff_t rows,
                                  ptrdiff_t low_cols, ptrdiff_t high_cols, bool load_c,
                                  const CLadonEpilogue *epilogue, float *tile) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    CLADON_DIRECT_PREFETCH_C(taps, 32)
    const float *a = weights;
    // The taps' input lines lie in many planes, in an order the hardware prefetchers do not follow: ask for those of
    // the tap 32 ahead (about 200 cycles; measured 79 % -> 85 % of the FMA peak on encoder.2, one thread).
    enum { distance = 32 };
    ptrdiff_t t = 0;
    for (; t < taps - distance; t++) {
        ptrdiff_t o = offsets[t], ahead = offsets[t + distance];
        CLADON_DIRECT_PREFETCH_C_ROW(t)
        __builtin_prefetch(low + ahead);
        __builtin_prefetch(high + ahead + 7);
        CLADON_DIRECT_TAP256(low + o, high + o)
    }
    for (; t < taps; t++) CLADON_DIRECT_TAP256(low + offsets[t], high + offsets[t])
    CLADON_DIRECT_STORE256
}

/// Whether the taps come in runs of five at one pattern of offsets, `offsets[t + k] − offsets[t] == pattern[k]` for
/// every `t` a multiple of 5: a 5-wide kernel row, as the encoder's 5×5 convolutions lay their taps out (input
/// channel, kernel row, kernel column; with stride 2 the pattern is 0, P, 1, P + 1, 2 for phase planes P apart).
static bool direct_runs_of_five(ptrdiff_t taps, const ptrdiff_t *offsets, ptrdiff_t pattern[5]) {
    if (taps < 5 || taps % 5 != 0) return false;
    for (int k = 0; k < 5; k++) pattern[k] = offsets[k] - offsets[0];
    for (ptrdiff_t t = 5; t < taps; t += 5) {
        for (int k = 1; k < 5; k++) {
            if (offsets[t + k] - offsets[t] != pattern[k]) return false;
        }
    }
    return true;
}

/// ``cladon_conv_direct_6x16_avx2`` for taps in runs of five (``direct_runs_of_five``): one offset read per run, the
/// other four added from `pattern` in registers, and one look-ahead of four lines per run (the first and last taps'
/// lines of the run six runs on) instead of two lines per tap: per tap the plain tile issues two offset reads and two
/// prefetches besides its two input loads and six weight broadcasts, for 12 FMAs. Same taps in the same order, so the
/// same bits. With `avx2-6x16` forced on Zen 4 the encoder in `ladon infer` took 0.94× the time (26.8 → 25.1 ms,
/// `compare_binaries.py`, 8 rounds × 5; twenty-seventh session, docs/performance.md).
__attribute__((target("avx2,fma")))
static void conv_direct_6x16_runs5_avx2(ptrdiff_t taps, const ptrdiff_t *offsets, const ptrdiff_t pattern[5],
                                        const float *low, const float *high, const float *weights, float *c_low,
                                        float *c_high, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t low_cols,
                                        ptrdiff_t high_cols, bool load_c, const CLadonEpilogue *epilogue, float *tile) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const ptrdiff_t runs = taps / 5, p1 = pattern[1], p2 = pattern[2], p3 = pattern[3], p4 = pattern[4];
    enum { ahead = 6 };  // runs: 30 taps, about the plain tile's 32
    CLADON_DIRECT_PREFETCH_C(runs, ahead)  // one C row per run over the first `rows` runs
    const float *a = weights;
    for (ptrdiff_t r = 0; r < runs; r++) {
        const float *l = low + offsets[5 * r], *h = high + offsets[5 * r];
        CLADON_DIRECT_PREFETCH_C_ROW(r)
        if (r + ahead < runs) {
            ptrdiff_t o = offsets[5 * (r + ahead)];
            __builtin_prefetch(low + o);
            __builtin_prefetch(low + o + p1);
            __builtin_prefetch(high + o + p3 + 7);
            __builtin_prefetch(high + o + p4 + 7);
        }
        CLADON_DIRECT_TAP256(l, h) CLADON_DIRECT_TAP256(l + p1, h + p1) CLADON_DIRECT_TAP256(l + p2, h + p2)
        CLADON_DIRECT_TAP256(l + p3, h + p3) CLADON_DIRECT_TAP256(l + p4, h + p4)
    }
    CLADON_DIRECT_STORE256
}

/// The AVX2 tile for one depth block: taps in runs of five on ``conv_direct_6x16_runs5_avx2`` (`runs_of_five` and
/// `pattern` found once per call by ``CLADON_DIRECT_SETUP_AVX2``), any other layout on ``cladon_conv_direct_6x16_avx2``.
#define CLADON_DIRECT_SETUP_AVX2                                                                                \
    ptrdiff_t pattern[5];                                                                                       \
    bool runs_of_five = direct_runs_of_five(taps, offsets, pattern);
#define CLADON_DIRECT_KERNEL_AVX2(taps, offsets, ...)                                                           \
    (runs_of_five ? conv_direct_6x16_runs5_avx2(taps, offsets, pattern, __VA_ARGS__)                            \
                  : cladon_conv_direct_6x16_avx2(taps, offsets, __VA_ARGS__))

CLADON_DIRECT_TILES(avx2, __attribute__((target("avx2,fma"))), CLADON_DIRECT_KERNEL_AVX2, CLADON_NO_PAIR, 0,
                    cladon_gemm_block_6x16_avx2, 2, 8, CLADON_DIRECT_SETUP_AVX2)
#endif
