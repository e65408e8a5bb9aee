// encoder.2 of the full-size model (5x5 / stride 2, 96 -> 48, 208 x 208 in) on the direct-convolution tiles alone:
// the planes and packed weights made once, then `cladon_conv_direct_tiles_avx512` (where the CPU has AVX-512F; AVX2=1
// forces the AVX2 tiles) or `cladon_conv_direct_tiles_avx2` over every output row pair and depth block as
// `DirectTiles.run` calls it (tiles of 32 or 16 columns, the row tails paired, depth blocks of 240), on 1 or more threads
// taking 2 pairs at a time. No weight packing, no GDN: what the tile loop alone reaches, against the FMA peak.
//
//   clang -O3 -I Sources/CLadonKernels/include Scripts/bench/direct_conv_harness.c Sources/CLadonKernels/*.c \
//       -lpthread -lm -o /tmp/direct_conv_harness
//   /tmp/direct_conv_harness [threads [repetitions [depth]]]      (an x86-64 CPU with AVX2 + FMA)
//   HOT=1 /tmp/direct_conv_harness 2      # every pair reads the planes of the first 4 pairs: inputs stay in cache
//   COPY=1 /tmp/direct_conv_harness 1     # each repetition first fills the planes from a 96 x 208 x 208 map (one
//                                         # thread), as `fillDirectPlanes` does before the tiles
//
// Prints the fastest and the median repetition (ms and GFLOP/s); on a shared host the fastest is the steadier figure.
#include "CLadonKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CIN = 96, COUT = 48, H = 208, W = 208, K = 5, S = 2, P = 2, OH = 104, OW = 104 };
static int padded_h, row_width, taps, depth, hot, half = 8;
static float *planes, *packed, *out, *image;
static int copy_planes;
static ptrdiff_t *offsets;
static atomic_int next_pair;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// The tiles of output rows 2·pair and 2·pair + 1: tiles of two `half`-column halves per row (six of 16 columns with
/// AVX2, three of 32 with AVX-512), then both rows' last 8 columns as one.
static int pair_tiles(int pair, CLadonDirectTile *tiles) {
    int n = 0, source = hot ? pair % 4 : pair, r0 = 2 * pair, r1 = r0 + 1, full = OW / (2 * half) * (2 * half);
    for (int r = 0; r < 2; r++) {
        const float *row = planes + (size_t)(2 * source + r) * S * row_width;
        for (int ox = 0; ox < full; ox += 2 * half)
            tiles[n++] = (CLadonDirectTile){row + ox, row + ox + half, (r0 + r) * OW + ox, (r0 + r) * OW + ox + half,
                                            half, half};
    }
    const float *first = planes + (size_t)(2 * source) * S * row_width + full;
    tiles[n++] = (CLadonDirectTile){first, first + S * row_width, r0 * OW + full, r1 * OW + full, OW - full, OW - full};
    return n;
}

static void *worker(void *unused) {
    (void)unused;
    float tile[24 * 16];
    CLadonDirectTile tiles[16];
    for (;;) {
        int first = atomic_fetch_add(&next_pair, 2);
        if (first >= OH / 2) return NULL;
        for (int pair = first; pair < first + 2 && pair < OH / 2; pair++) {
            int n = pair_tiles(pair, tiles);
            for (int t0 = 0; t0 < taps; t0 += depth) {
                int d = taps - t0 < depth ? taps - t0 : depth;
                if (half == 16)
                    cladon_conv_direct_tiles_avx512(d, offsets + t0, tiles, n, packed + t0 * 6, taps * 6, COUT, out,
                                                    OH * OW, t0 > 0, NULL, NULL, NULL, false, NULL, tile);
                else
                    cladon_conv_direct_tiles_avx2(d, offsets + t0, tiles, n, packed + t0 * 6, taps * 6, COUT, out,
                                                  OH * OW, t0 > 0, NULL, NULL, NULL, false, NULL, tile);
            }
        }
    }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 15;
    depth = argc > 3 ? atoi(argv[3]) : 240;
    hot = getenv("HOT") != NULL;
    copy_planes = getenv("COPY") != NULL;
    if (threads < 1 || threads > 8 || reps < 1 || reps > 100 || depth < 1) {
        fprintf(stderr, "usage: %s [threads 1-8 [repetitions 1-100 [depth]]]\n", argv[0]);
        return 2;
    }
    half = cladon_cpu_has_avx512f() && !getenv("AVX2") ? 16 : 8;
    if (!cladon_cpu_has_avx2_fma()) {
        fprintf(stderr, "needs AVX2 + FMA\n");
        return 2;
    }
    padded_h = H + 2 * P;
    row_width = (OW + 2 * half - 1) / (2 * half) * (2 * half) + (K - 1) / S;
    taps = CIN * K * K;
    size_t plane_floats = (size_t)CIN * S * padded_h * row_width, packed_floats = (size_t)(COUT / 6) * taps * 6;
    planes = aligned_alloc(64, plane_floats * 4);
    packed = aligned_alloc(64, packed_floats * 4);
    out = aligned_alloc(64, (size_t)COUT * OH * OW * 4);
    offsets = malloc(taps * sizeof(ptrdiff_t));
    image = aligned_alloc(64, (size_t)CIN * H * W * 4);
    for (size_t i = 0; i < (size_t)CIN * H * W; i++) image[i] = 1e-3f * (float)(i % 19);
    for (size_t i = 0; i < plane_floats; i++) planes[i] = 1e-3f * (float)(i % 17);
    for (size_t i = 0; i < packed_floats; i++) packed[i] = 1e-3f * (float)(i % 13);
    int n = 0;
    for (int ic = 0; ic < CIN; ic++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) offsets[n++] = ((ic * S + kx % S) * padded_h + ky) * row_width + kx / S;
    double times[100];
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (copy_planes)  // as `fillDirectPlanes` (one thread): both column phases of every channel, zero-bordered
            for (int ic = 0; ic < CIN; ic++)
                for (int phase = 0; phase < S; phase++) {
                    int left = (P - phase + S - 1) / S, first_column = left * S + phase - P;
                    cladon_copy_bordered_plane(planes + (size_t)(ic * S + phase) * padded_h * row_width, padded_h,
                                               row_width, P, left, image + (size_t)ic * H * W, H, W, 1, S, 0,
                                               first_column);
                }
        atomic_store(&next_pair, 0);
        pthread_t helpers[8];
        for (int i = 1; i < threads; i++) pthread_create(&helpers[i], NULL, worker, NULL);
        worker(NULL);
        for (int i = 1; i < threads; i++) pthread_join(helpers[i], NULL);
        times[r] = now() - t0;
    }
    for (int a = 0; a < reps; a++)
        for (int b = a + 1; b < reps; b++)
            if (times[b] < times[a]) { double x = times[a]; times[a] = times[b]; times[b] = x; }
    double gflop = 2.0 * COUT * taps * OH * OW / 1e9;
    printf("encoder.2 direct tiles (%s), %d thread(s), depth %d%s%s: fastest %.2f ms (%.1f GFLOP/s), median %.2f ms (%.1f)\n",
           half == 16 ? "avx512" : "avx2", threads, depth, hot ? ", planes in cache" : "",
           copy_planes ? ", planes copied first" : "", times[0] * 1e3, gflop / times[0], times[reps / 2] * 1e3,
           gflop / times[reps / 2]);
    return 0;
}
