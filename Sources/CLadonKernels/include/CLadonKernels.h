// C kernels behind LadonCore's hot loops.
// - GEMM micro-kernels for x86-64 built for specific CPU features (AVX-512, AVX2 + FMA), chosen at run time.
//   They need no compiler flags: each function carries its own `target` attribute, so a package that
//   depends on ladon-swift by version (where SwiftPM forbids unsafe flags) still gets FMA kernels.
//   On other architectures and systems they are not declared and LadonCore keeps its Swift kernels.
// - Portable routines (every architecture), on x86-64 also compiled for AVX2 and AVX-512 and picked from CPUID like
//   the GEMM kernels (CPULevels.h): im2col packing (block copies from zero-bordered planes), plain and transposed
//   GEMM B packing and the 8 x 8 transposes (Transpose.c), GDN's element-wise halves (GDNBlocks.c), RoIAlign's
//   channels-last sums (RoIAlignSampling.c) and the Winograd transforms (WinogradTransforms.c). Those with a
//   `level` argument let tests run every build the CPU has.
#ifndef CLADON_KERNELS_H
#define CLADON_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__linux__)
#include <features.h>
#if defined(__GLIBC__)
#include <malloc.h>
/// glibc: serve every block from the heap, none from a mapping of its own (`M_MMAP_MAX` 0; `M_MMAP_THRESHOLD` is set
/// to 32 MB, its maximum, as well, for C libraries that ignore the first), and keep up to 256 MB of freed heap
/// (`M_TRIM_THRESHOLD`), in the main arena for every thread (`M_ARENA_MAX` 1: a thread's own arena lives in
/// 64 MB heaps that glibc unmaps as soon as they are empty, whatever the trim threshold, so a model run off the main
/// thread re-faulted its big blocks on every call); used by LadonCore's `AllocatorTuning` and the test process's start.
static inline void cladon_malloc_keep_large_blocks(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_ARENA_MAX, 1);
}
#endif
#endif

/// Packs rows `0..<kc`, columns `0..<nc` of an im2col matrix into `nr`-column GEMM panels
/// `dst[(q * kc + r) * nr + j]`, zero past `nc`. Element (r, j) is `base[row_offsets[r] + column_offsets[j]]`:
/// a row is one (input channel, kernel tap) of a zero-bordered plane, a column one output position. Runs of
/// consecutive offsets are copied as blocks (a panel of two runs as two overlapping blocks, when the second
/// run starts far enough on that both stay within the panel's own first and last element); anything else is
/// gathered column by column, so nothing outside the addressed elements is read.
void cladon_pack_im2col_panels(float *_Nonnull dst, const float *_Nonnull base,
                               const ptrdiff_t *_Nonnull row_offsets, ptrdiff_t kc,
                               const ptrdiff_t *_Nonnull column_offsets, ptrdiff_t nc, ptrdiff_t nr);

/// ``cladon_pack_im2col_panels`` built for one instruction set: `level` 1 = baseline, 2 = AVX2, 3 = AVX-512F, 0 = the
/// best this CPU runs (levels above it fall back to it). The same results at every level; tests run each. On other
/// architectures there is one build and `level` is ignored.
void cladon_pack_im2col_panels_at_level(int level, float *_Nonnull dst, const float *_Nonnull base,
                                        const ptrdiff_t *_Nonnull row_offsets, ptrdiff_t kc,
                                        const ptrdiff_t *_Nonnull column_offsets, ptrdiff_t nc, ptrdiff_t nr);

/// Packs rows `0..<kc`, columns `0..<nc` of the row-major matrix `b` (leading dimension `ldb`) into `nr`-column
/// GEMM panels `dst[(q * kc + r) * nr + j]`, zero past `nc`; row by row, asking for rows a few ahead
/// (software prefetch). `level` as for ``cladon_pack_im2col_panels_at_level``.
void cladon_pack_matrix_panels(int level, float *_Nonnull dst, const float *_Nonnull b, ptrdiff_t ldb, ptrdiff_t kc,
                               ptrdiff_t nc, ptrdiff_t nr);

/// Writes one `height x width` plane: stride phase (`phase_y`, `phase_x`) of the `src_height x src_width` image
/// `src` (its rows `phase_y, phase_y + stride_y, ...`, columns likewise) at row `top`, column `left`, zero
/// everywhere else. Stride 1 and phase 0 make it a plain zero-bordered copy.
void cladon_copy_bordered_plane(float *_Nonnull dst, ptrdiff_t height, ptrdiff_t width, ptrdiff_t top,
                                ptrdiff_t left, const float *_Nonnull src, ptrdiff_t src_height,
                                ptrdiff_t src_width, ptrdiff_t stride_y, ptrdiff_t stride_x, ptrdiff_t phase_y,
                                ptrdiff_t phase_x);

/// RoIAlign's sums for one RoI over a channels-last map `input` (`[H·W, channels]`): for every bin `b` and channel
/// `c`, `output[c * bins + b] = (Σ_s ((w1·v1 + w2·v2) + w3·v3) + w4·v4) / count`, the samples `s` of bin `b` in
/// order, tap `t` of sample `s` reading pixel `positions[(b * samples_per_bin + s) * 4 + t]` with weight
/// `weights[...]`; float32 operations in exactly that order with no fused multiply-add (torchvision's CPU kernel).
/// `level` as for ``cladon_pack_im2col_panels_at_level``.
void cladon_roi_align_channels_last(int level, float *_Nonnull output, const float *_Nonnull input,
                                    ptrdiff_t channels, const int *_Nonnull positions,
                                    const float *_Nonnull weights, ptrdiff_t bins, ptrdiff_t samples_per_bin,
                                    float count);

/// The entropy bottleneck's quantisation of `count` latent values of one channel: `dst[i]` = `roundHalfToEven(src[i] −
/// median)` clamped to ±2^29 (in float), minus `offset`, clamped to `low ... high`. Returns how many results lie outside
/// `0 ..< escape` (as unsigned); sets `*non_finite` when any value is NaN or infinite (its result is then meaningless).
/// `level` as for ``cladon_pack_im2col_panels_at_level``.
ptrdiff_t cladon_quantize_plane(int level, int32_t *_Nonnull dst, const float *_Nonnull src, ptrdiff_t count,
                                float median, int32_t offset, int32_t low, int32_t high, uint32_t escape,
                                bool *_Nonnull non_finite);

/// GDN's |x| as GEMM B panels: `rows` channel rows of `x` (`stride` apart, `width` pixels each) into `nr`-column panels
/// `dst[(q * rows + p) * nr + j] = |x[p * stride + q * nr + j]|`, zero past `width`. `level` as for
/// ``cladon_pack_im2col_panels_at_level``.
void cladon_pack_abs_panels(int level, float *_Nonnull dst, const float *_Nonnull x, ptrdiff_t stride, ptrdiff_t rows,
                            ptrdiff_t width, ptrdiff_t nr);

/// GDN's last step over `channels` rows of `width` pixels: `y = x * (norm + beta[c])` (`inverse`) or
/// `x * (1 / (norm + beta[c]))`; `x` and `y` rows `stride` apart (may be the same memory), `norm` rows `ldn` apart.
void cladon_gdn_scale(int level, float *_Nonnull y, const float *_Nonnull x, ptrdiff_t stride,
                      const float *_Nonnull norm, ptrdiff_t ldn, const float *_Nonnull beta, ptrdiff_t channels,
                      ptrdiff_t width, bool inverse);

/// Rows `row_begin ..< row_end` of the row-major `rows x columns` matrix `src` into `dst` (`columns x rows`):
/// `dst[j * rows + i] = src[i * columns + j]`, in 8 x 8 register blocks. `level` as for
/// ``cladon_pack_im2col_panels_at_level``.
void cladon_transpose_rows(int level, float *_Nonnull dst, const float *_Nonnull src, ptrdiff_t rows,
                           ptrdiff_t columns, ptrdiff_t row_begin, ptrdiff_t row_end);

/// GEMM B panels of a B stored transposed (`[N x K]`, leading dimension `ldb`, from its first packed column and
/// depth): `dst[(q * kc + p) * nr + j] = b[(q * nr + j) * ldb + p]` for columns `0 ..< nc`, zero past `nc`;
/// 8 x 8 register transposes. `level` as above.
void cladon_pack_transposed_panels(int level, float *_Nonnull dst, const float *_Nonnull b, ptrdiff_t ldb,
                                   ptrdiff_t kc, ptrdiff_t nc, ptrdiff_t nr);

/// Floats per padded row of ``cladon_winograd_input_transform`` for output tiles of side `m` and `tw` tiles per row
/// (every vector read stays inside it); its `rows` scratch holds 5 such rows.
static inline ptrdiff_t cladon_winograd_row_span(ptrdiff_t m, ptrdiff_t tw) { return m * tw + 32; }

/// The Winograd input transform `V = Bᵀ d B` of one channel `x` (`h x w`, padding `padding` on every side) for the
/// tile rows `ty_begin ..< ty_end` of 4 x 4 input tiles every `m` (2 or 3) positions, `tw` tiles per row: tile `t`
/// (counted from `ty_begin`'s first tile) of plane `xi` goes to `v[xi * xi_stride + t]`. `rows` is scratch for
/// `5 * cladon_winograd_row_span(m, tw)` floats. Sixteen tiles per vector step (eight in rows of 8 to 15); every level
/// gives the same bits.
/// `level` as for ``cladon_pack_im2col_panels_at_level``.
void cladon_winograd_input_transform(int level, float *_Nonnull v, ptrdiff_t xi_stride, const float *_Nonnull x,
                                     ptrdiff_t h, ptrdiff_t w, ptrdiff_t m, ptrdiff_t padding, ptrdiff_t tw,
                                     ptrdiff_t ty_begin, ptrdiff_t ty_end, float *_Nonnull rows);

/// The Winograd output transform `Y = Aᵀ M A` of one output channel for the tile rows `ty_begin ..< ty_end` (`tw`
/// tiles per row of m x m outputs, m = 2 or 3): tile `t`'s 16 values are `products[xi * xi_stride + t]` (`t` counted
/// from `ty_begin`'s first tile); its outputs inside the `oh x ow` map `out` become `relu?(y + bias + residual)`
/// (`residual` the same map, or NULL; ReLU `v > 0 ? v : 0`). Sixteen whole tiles per vector step with AVX-512, eight in
/// the other builds; every level gives the same bits. `level` as for ``cladon_pack_im2col_panels_at_level``.
void cladon_winograd_output_transform(int level, float *_Nonnull out, const float *_Nonnull products,
                                      ptrdiff_t xi_stride, ptrdiff_t m, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t tw,
                                      ptrdiff_t ty_begin, ptrdiff_t ty_end, float bias,
                                      const float *_Nullable residual, bool relu);

/// One tile of a direct convolution: 8 columns read at `low` (written at output offset `c_low`) and 8 at `high`
/// (`c_high`), `low_cols` and `high_cols` of them valid (at most 8 each). A plain 16-column tile has `high = low + 8`.
typedef struct {
    const float *_Nonnull low;
    const float *_Nonnull high;
    ptrdiff_t c_low, c_high, low_cols, high_cols;
} CLadonDirectTile;

/// Runs `function(context, part)` for every `part` in `0 ..< parts`, part 0 on the calling thread and the others on the
/// kernels' pool of worker threads (started on first use, one per extra part), and returns once all have finished.
/// Idle workers spin for 2 ms before they sleep, so back-to-back calls (a network's layers) start at once. Returns
/// false, having run nothing, when the pool is busy with another caller's job (or a part forks again), when `parts`
/// exceeds the online processors or 64, or when a thread cannot be started: the caller then runs the parts itself.
bool cladon_pool_run(ptrdiff_t parts, void (*_Nonnull function)(void *_Nullable, ptrdiff_t), void *_Nullable context);

/// One spin-wait step (`pause` on x86-64, `yield` on arm64): for a thread waiting on another's progress flag.
void cladon_cpu_relax(void);

#if defined(__x86_64__) && (defined(__linux__) || defined(__APPLE__))
#define CLADON_KERNELS_X86 1

/// What to apply to a tile after its last depth block: `C = relu?(C + bias[row] + residual)`.
/// Pointers are relative to the tile's first element (`bias[i]` for tile row `i`, `residual + i * ldr + j`).
///
/// `gdn` (1: GDN, 2: inverse GDN; 0: none) makes the tile GDN's last step instead: `C` then holds the GDN's input `x`,
/// and the finished sum `v = Σ + bias[row]` (bias = beta) replaces it with `x · (1 / v)` or `x · v`, the operations
/// of `cladon_gdn_scale` (so no `norm` block is written and read back). Only with `load_c` false (one depth block).
typedef struct {
    const float *_Nullable bias;
    const float *_Nullable residual;
    ptrdiff_t ldr;
    bool relu;
    int gdn;
} CLadonEpilogue;

/// Whether the CPU and the OS support AVX-512 Foundation (zmm registers); also true in an emulated-AVX-512 check build
/// on an AVX2 + FMA machine (``cladon_avx512_is_emulated``).
bool cladon_cpu_has_avx512f(void);
/// Whether this is a check build whose AVX-512 code runs emulated on AVX2 + FMA (`-DCLADON_EMULATE_AVX512`,
/// `Scripts/check/emulated-avx512.sh`).
bool cladon_avx512_is_emulated(void);
/// Whether the CPU and the OS support AVX2 and FMA3.
bool cladon_cpu_has_avx2_fma(void);
/// The instruction set the feature-specific builds in this module pick: 1 = baseline x86-64, 2 = AVX2 + FMA,
/// 3 = AVX-512F; read from CPUID once.
int cladon_cpu_level(void);

/// One 12x32 tile from packed panels (`a`: `kc` groups of 12 values, `b`: `kc` rows of 32 values), with
/// the contract of LadonCore's `gemmMicroKernel12x32`: a full tile goes to `c` (leading dimension `ldc`),
/// adding the old `C` when `load_c` and then applying `epilogue` when not NULL; an edge tile (`rows < 12` or
/// `cols < 32`) is computed into `tile` (12 * 32 floats) and its valid corner copied. AVX-512F only.
void cladon_gemm_12x32_avx512(ptrdiff_t kc, const float *_Nonnull a, const float *_Nonnull b,
                              float *_Nonnull c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols, bool load_c,
                              const CLadonEpilogue *_Nullable epilogue, float *_Nonnull tile);

/// One 6x16 tile (`a`: `kc` groups of 6, `b`: `kc` rows of 16); same contract, `tile` holds 6 * 16 floats.
/// AVX2 + FMA only.
void cladon_gemm_6x16_avx2(ptrdiff_t kc, const float *_Nonnull a, const float *_Nonnull b,
                           float *_Nonnull c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols, bool load_c,
                           const CLadonEpilogue *_Nullable epilogue, float *_Nonnull tile);

/// Every tile of one block with the 12x32 kernel: rows `0 ..< mc` of `a` (12-row panels of `kc` groups, one after
/// another) against columns `0 ..< nc` of `b` (32-column panels of `kc` rows), into `c`; columns outer, rows inner.
/// `epilogue` (relative to the block's first element, as for one tile) applies to every tile when not NULL. The same
/// results as calling the tile kernel per tile (which is what it does, without a call from Swift per tile).
void cladon_gemm_block_12x32_avx512(ptrdiff_t kc, const float *_Nonnull a, ptrdiff_t mc, const float *_Nonnull b,
                                    ptrdiff_t nc, float *_Nonnull c, ptrdiff_t ldc, bool load_c,
                                    const CLadonEpilogue *_Nullable epilogue, float *_Nonnull tile);

/// ``cladon_gemm_block_12x32_avx512`` for a `B` not yet packed: columns `0 ..< nc` of the row-major `kc × nc` matrix at
/// `b_src` (leading dimension `ldb`). The first row tile of each 32-column panel packs the panel into `b_dst` (the
/// layout ``cladon_gemm_block_12x32_avx512`` reads, `kc · roundUp(nc, 32)` floats) while it multiplies, and the block's
/// other row tiles read it from there; the narrower last panel is packed first. Same results as packing `B` and calling
/// ``cladon_gemm_block_12x32_avx512``, bit for bit. AVX-512F only.
void cladon_gemm_block_12x32_packing_b_avx512(ptrdiff_t kc, const float *_Nonnull a, ptrdiff_t mc,
                                              const float *_Nonnull b_src, ptrdiff_t ldb, ptrdiff_t nc,
                                              float *_Nonnull b_dst, float *_Nonnull c, ptrdiff_t ldc, bool load_c,
                                              const CLadonEpilogue *_Nullable epilogue, float *_Nonnull tile);

/// ``cladon_gemm_block_12x32_avx512`` with the 6x16 AVX2 + FMA kernel (6-row A panels, 16-column B panels).
void cladon_gemm_block_6x16_avx2(ptrdiff_t kc, const float *_Nonnull a, ptrdiff_t mc, const float *_Nonnull b,
                                 ptrdiff_t nc, float *_Nonnull c, ptrdiff_t ldc, bool load_c,
                                 const CLadonEpilogue *_Nullable epilogue, float *_Nonnull tile);

/// One depth block of a direct convolution over `tile_count` tiles: for each tile, for each 6-channel block `b` of
/// `channels` output channels (innermost, so the tile's input stays in L1),
/// ``cladon_conv_direct_6x16_avx2`` with the block's weights `weights + b * block_stride`, output
/// `out + 6b · plane` (+ the tile's offsets; rows `plane` apart) and `epilogue` (relative to `out`, residual rows
/// `ldr` apart) moved to the block's first channel and the tile's first column.
///
/// With `gdn_gamma` (only on the last depth block: the encoder's conv → GDN pairs), each finished tile's columns then
/// go through the GDN over all `channels` in place, while they are in cache, with the results of
/// `cladon_pack_abs_panels`, the 6x16 block loop and `cladon_gdn_scale` on the whole map (the scale done by the block
/// loop's epilogue, `CLadonEpilogue.gdn`): `gdn_gamma` packed as the GEMM's 6-row panels in one depth block
/// (`channels` ≤ its `KC`), `gdn_beta`, `gdn_inverse`, and `gdn_scratch` of `channels · 16` floats (the |x| panel).
/// NULL `gdn_gamma`: no GDN, and the other three are not read. Where the taps come in runs of five at one pattern of
/// offsets (a 5-wide kernel row: the encoder's 5×5 convolutions), a kernel that reads one offset per run gives the same
/// bits. AVX2 + FMA only.
void cladon_conv_direct_tiles_avx2(ptrdiff_t taps, const ptrdiff_t *_Nonnull offsets,
                                   const CLadonDirectTile *_Nonnull tiles, ptrdiff_t tile_count,
                                   const float *_Nonnull weights, ptrdiff_t block_stride, ptrdiff_t channels,
                                   float *_Nonnull out, ptrdiff_t plane, bool load_c,
                                   const CLadonEpilogue *_Nullable epilogue, const float *_Nullable gdn_gamma,
                                   const float *_Nullable gdn_beta, bool gdn_inverse, float *_Nullable gdn_scratch,
                                   float *_Nonnull tile);

/// One 6x16 tile of a direct convolution, as two 8-column halves: for column `j < 8`
/// `acc[i][j] = Σ_t weights[t * 6 + i] · low[offsets[t] + j]`, for `j ≥ 8` the same over `high[offsets[t] + j − 8]`, over
/// taps `t = 0 ..< taps` in order (one fused multiply-add chain per element). The halves go to `c_low` and `c_high`
/// (columns `0 ..< low_cols` and `0 ..< high_cols`, at most 8 each; rows `ldc` apart), adding the old values when
/// `load_c`, then `epilogue` (relative to `c_low`; its residual has `C`'s layout). A plain tile has `high = low + 8`
/// and `c_high = c_low + 8`; two half rows of an output (the last 8 columns of two rows) make one tile too.
/// Reads 8 floats at every `low + offsets[t]` and `high + offsets[t]`. AVX2 + FMA only.
void cladon_conv_direct_6x16_avx2(ptrdiff_t taps, const ptrdiff_t *_Nonnull offsets, const float *_Nonnull low,
                                  const float *_Nonnull high, const float *_Nonnull weights, float *_Nonnull c_low,
                                  float *_Nonnull c_high, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t low_cols,
                                  ptrdiff_t high_cols, bool load_c, const CLadonEpilogue *_Nullable epilogue,
                                  float *_Nonnull tile);

/// ``cladon_conv_direct_6x16_avx2`` for AVX-512: a 6x32 tile as two 16-column halves (`low_cols`, `high_cols` at most
/// 16 each; a plain tile has `high = low + 16`, `c_high = c_low + 16`; two rows' last ≤ 16 columns make one tile).
/// Twelve zmm accumulators, each element the same FMA chain as the 6x16 kernels. Reads 16 floats at every
/// `low + offsets[t]` and `high + offsets[t]`; `tile` holds 6 · 32 floats. AVX-512F only.
void cladon_conv_direct_6x32_avx512(ptrdiff_t taps, const ptrdiff_t *_Nonnull offsets, const float *_Nonnull low,
                                    const float *_Nonnull high, const float *_Nonnull weights, float *_Nonnull c_low,
                                    float *_Nonnull c_high, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t low_cols,
                                    ptrdiff_t high_cols, bool load_c, const CLadonEpilogue *_Nullable epilogue,
                                    float *_Nonnull tile);

/// ``cladon_conv_direct_tiles_avx2`` over AVX-512 tiles: one depth block over `tile_count` tiles of two 16-column
/// halves, each tile against two 6-channel blocks at once (12 × 32, 24 accumulators) while 12 or more channels remain,
/// then ``cladon_conv_direct_6x32_avx512`` for the rest (the same FMA chain per element either way); with `gdn_gamma`
/// (packed as the 12x32 kernel's 12-row panels, one depth block) the GDN of each finished tile, `gdn_scratch` holding
/// `channels · 32` floats. `tile` holds 12 · 32 floats.
/// AVX-512F only.
void cladon_conv_direct_tiles_avx512(ptrdiff_t taps, const ptrdiff_t *_Nonnull offsets,
                                     const CLadonDirectTile *_Nonnull tiles, ptrdiff_t tile_count,
                                     const float *_Nonnull weights, ptrdiff_t block_stride, ptrdiff_t channels,
                                     float *_Nonnull out, ptrdiff_t plane, bool load_c,
                                     const CLadonEpilogue *_Nullable epilogue, const float *_Nullable gdn_gamma,
                                     const float *_Nullable gdn_beta, bool gdn_inverse, float *_Nullable gdn_scratch,
                                     float *_Nonnull tile);
#endif

#endif
