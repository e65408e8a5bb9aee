// The GEMM's loop nest around the AVX-512 micro-kernel with A and B already packed, in the layouts LadonCore uses
// (A depth-block-major like PackedMatrix, B one contiguous panel block per depth block): what the loop nest and the
// caches cost without any packing. Columns outermost (nc) -> depth blocks (kc) -> 144-row blocks -> 32-column panels
// -> 12-row tiles, as `Kernels.gemmSerial` runs prepacked weights on a 1 MB-L2 machine. One thread.
//
//   clang -O3 -I Sources/CLadonKernels/include Scripts/bench/gemm_loop_harness.c \
//       Sources/CLadonKernels/GEMMMicroKernels.c -o /tmp/gemm_loop_harness
//   /tmp/gemm_loop_harness M K N [kc [nc]]      (an AVX-512 CPU; prints GFLOP/s and % of PEAK_GFLOPS, default 233)
//   REPS=n times n runs (default 7) and prints their median: long runs let two copies started together overlap
//   throughout, which measures what the cores' shared resources leave a two-thread GEMM.
#include "CLadonKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdbool.h>
#include <stddef.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s M K N [kc [nc]]\n", argv[0]); return 2; }
    double peak = getenv("PEAK_GFLOPS") ? atof(getenv("PEAK_GFLOPS")) : 233;
    int M = atoi(argv[1]), K = atoi(argv[2]), N = atoi(argv[3]);
    int KC = argc > 4 ? atoi(argv[4]) : 256, NC = argc > 5 ? atoi(argv[5]) : 256, MC = 144;
    int Mp = (M + 11) / 12 * 12, Np = (N + 31) / 32 * 32;
    float *A = aligned_alloc(64, (size_t)Mp * K * 4), *B = aligned_alloc(64, (size_t)K * Np * 4), *C = aligned_alloc(64, (size_t)M * N * 4);
    float tile[12 * 32];
    for (size_t i = 0; i < (size_t)Mp * K; i++) A[i] = 1e-3f * (i % 13);
    for (size_t i = 0; i < (size_t)K * Np; i++) B[i] = 1e-3f * (i % 11);
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 7;
    if (reps < 1) reps = 1;
    double *times = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int jc = 0; jc < N; jc += NC) {
            int nc = N - jc < NC ? N - jc : NC;
            for (int pc = 0; pc < K; pc += KC) {
                int kc = K - pc < KC ? K - pc : KC;
                // B block (kc x nc) packed: panel q at B + (jc/32 + q) * K * 32 + pc * 32 (as if packed per depth block)
                for (int ic = 0; ic < M; ic += MC) {
                    int mc = M - ic < MC ? M - ic : MC;
                    for (int jr = 0; jr < nc; jr += 32) {
                        const float *bp = B + (size_t)pc * Np + (size_t)((jc + jr) / 32) * kc * 32;
                        for (int ir = 0; ir < mc; ir += 12) {
                            const float *ap = A + (size_t)pc * Mp + (size_t)(ic + ir) * kc;
                            int rows = mc - ir < 12 ? mc - ir : 12, cols = nc - jr < 32 ? nc - jr : 32;
                            cladon_gemm_12x32_avx512(kc, ap, bp, C + (size_t)(ic + ir) * N + jc + jr, N, rows, cols,
                                                     pc > 0, NULL, tile);
                        }
                    }
                }
            }
        }
        times[r] = now() - t0;
    }
    for (int a = 0; a < reps; a++) for (int b = a + 1; b < reps; b++) if (times[b] < times[a]) { double x = times[a]; times[a] = times[b]; times[b] = x; }
    double flops = 2.0 * M * N * K;
    printf("M %d K %d N %d kc %d nc %d: %.2f ms, %.0f GFLOP/s (%.0f%% of %.0f)\n", M, K, N, KC, NC, times[reps / 2] * 1e3,
           flops / times[reps / 2] / 1e9, 100 * flops / times[reps / 2] / 1e9 / peak, peak);
    return 0;
}
