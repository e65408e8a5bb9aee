// What the classification head's 8 MB of weights cost cold, and whether asking for them during a compute-bound phase
// (as layer4's last 1x1 convolution would be) leaves them in cache for the GEMV after it. Two threads: each runs a
// ~2 ms FMA loop that streams its 2 MB half of an "A panel" (six passes) against a 512 KB L2-resident block and, every
// 4th step, asks for the next line of its half of the 8 MB (mode: none, prefetcht0, prefetcht2, or a real load); then
// both read their halves and the slower thread's time is kept. 64 MB are touched before each round so that the 8 MB
// start cold. Medians of 15 rounds. The question of docs/performance.md, "AMD Zen 4 (AVX-512), twenty-third session"
// (the classification head).
//
//   gcc -O2 -mavx512f Scripts/bench/cold_weights_harness.c -o /tmp/cold_weights_harness -lpthread
//   /tmp/cold_weights_harness
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    weight_floats = 2048 * 1000,  // the classifier's fc weight
    panel_floats = 1 << 20,       // 4 MB streamed by the compute phase (2 MB per thread)
    block_floats = 1 << 17,       // 512 KB per thread, stays in L2
    rounds = 15,
};
enum mode { none, prefetch_t0, prefetch_t2, real_loads, mode_count, stop = -1 };
static const char *mode_names[mode_count] = {"none", "prefetcht0", "prefetcht2", "real loads"};

static float *weights, *panel, *blocks[2];
static int mode;
static double compute_seconds[2], read_seconds[2];
static volatile float sink;
static pthread_barrier_t barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// The compute-bound phase of thread `id`, asking for one line of its half of the weights every 4th step.
static void compute(int id) {
    __m512 acc[12];
    for (int j = 0; j < 12; j++) acc[j] = _mm512_setzero_ps();
    const float *a = panel + (size_t)id * (panel_floats / 2);
    const float *b = blocks[id];
    size_t line = (size_t)id * (weight_floats / 2), end = line + weight_floats / 2, steps = 0;
    for (int pass = 0; pass < 6; pass++) {
        for (size_t i = 0; i < panel_floats / 2; i += 16) {
            __m512 av = _mm512_load_ps(a + i);
            for (int j = 0; j < 12; j++)
                acc[j] = _mm512_fmadd_ps(av, _mm512_load_ps(b + ((i + j * 16) & (block_floats - 1))), acc[j]);
            if (mode != none && (++steps & 3) == 0 && line < end) {
                const float *p = weights + line;
                if (mode == prefetch_t0) _mm_prefetch((const char *)p, _MM_HINT_T0);
                else if (mode == prefetch_t2) _mm_prefetch((const char *)p, _MM_HINT_T2);
                else acc[0] = _mm512_add_ps(acc[0], _mm512_castps128_ps512(_mm_load_ss(p)));
                line += 16;
            }
        }
    }
    __m512 sum = acc[0];
    for (int j = 1; j < 12; j++) sum = _mm512_add_ps(sum, acc[j]);
    sink += _mm512_reduce_add_ps(sum);
}

/// Thread `id` reads its half of the weights (four independent sums).
static void read_weights(int id) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = (size_t)id * (weight_floats / 2); i < (size_t)(id + 1) * (weight_floats / 2); i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(weights + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(weights + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(weights + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(weights + i + 48));
    }
    sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/// One round on thread `id`: compute, wait for the other, read, wait again.
static void round_on(int id) {
    double t0 = now();
    compute(id);
    compute_seconds[id] = now() - t0;
    pthread_barrier_wait(&barrier);
    double t1 = now();
    read_weights(id);
    read_seconds[id] = now() - t1;
    pthread_barrier_wait(&barrier);
}

static void *helper(void *unused) {
    (void)unused;
    for (;;) {
        pthread_barrier_wait(&barrier);
        if (mode == stop) return NULL;
        round_on(1);
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    weights = aligned_alloc(64, weight_floats * sizeof(float));
    panel = aligned_alloc(64, panel_floats * sizeof(float));
    for (size_t i = 0; i < weight_floats; i++) weights[i] = 1;
    for (size_t i = 0; i < panel_floats; i++) panel[i] = 1e-3f;
    for (int t = 0; t < 2; t++) {
        blocks[t] = aligned_alloc(64, block_floats * sizeof(float));
        for (size_t j = 0; j < block_floats; j++) blocks[t][j] = 1e-3f;
    }
    size_t evict_floats = 16 << 20;  // 64 MB
    float *evict = aligned_alloc(64, evict_floats * sizeof(float));
    memset(evict, 0, evict_floats * sizeof(float));

    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t thread;
    pthread_create(&thread, NULL, helper, NULL);
    double reads[mode_count][rounds], computes[mode_count][rounds];
    for (int r = 0; r < rounds; r++) {
        for (int m = 0; m < mode_count; m++) {
            for (size_t i = r % 16; i < evict_floats; i += 16) evict[i] += 1;  // one store per line
            mode = m;
            pthread_barrier_wait(&barrier);
            round_on(0);
            reads[m][r] = read_seconds[0] > read_seconds[1] ? read_seconds[0] : read_seconds[1];
            computes[m][r] = compute_seconds[0] > compute_seconds[1] ? compute_seconds[0] : compute_seconds[1];
        }
    }
    mode = stop;
    pthread_barrier_wait(&barrier);
    pthread_join(thread, NULL);
    for (int m = 0; m < mode_count; m++) {
        qsort(reads[m], rounds, sizeof(double), by_value);
        qsort(computes[m], rounds, sizeof(double), by_value);
        printf("%-11s compute %.3f ms, read 8 MB after it %.3f ms (middle 11 of 15: %.3f-%.3f)\n", mode_names[m],
               computes[m][rounds / 2] * 1e3, reads[m][rounds / 2] * 1e3, reads[m][2] * 1e3, reads[m][rounds - 3] * 1e3);
    }
    return 0;
}
