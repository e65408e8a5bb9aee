// The kernels' fork-join thread pool: workers that spin briefly between jobs, so a layer's parallel section starts
// without waking a sleeping thread (in a VM an idle vCPU is halted, and waking it took 50–70 µs per section on Zen 3,
// against under 1 µs for a spinning worker; see docs/performance.md).
//
// Part 0 runs on the caller; part i > 0 on worker i − 1, through that worker's own slot (request and done sequence
// numbers), so no part is ever claimed by two threads and a slot is rewritten only after its worker has finished
// with it. One job at a time: a second caller (another request in a server, or a part that forks again) is told to
// run its parts some other way.
#include "CLadonKernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

enum { max_workers = 63 };

/// How long an idle worker spins before it sleeps: long enough to bridge the gap between one layer's parallel section
/// and the next, short enough that an idle server sleeps almost at once.
static const int64_t spin_nanoseconds = 2000000;

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    _Atomic uint64_t request;  // bumped by the caller for each job this worker runs
    _Atomic uint64_t done;     // set to `request` by the worker when its part is finished
    _Atomic int sleeping;
    void (*function)(void *, ptrdiff_t);
    void *context;
    ptrdiff_t part;
} worker_slot;

static worker_slot slots[max_workers];
static int worker_count;  // workers started; only grows, under `pool_mutex`
static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void cladon_cpu_relax(void) { cpu_relax(); }

static int64_t now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *worker_main(void *argument) {
    worker_slot *slot = argument;
    uint64_t seen = 0;
    for (;;) {
        // Spin for the next request, then sleep until it comes.
        int64_t deadline = now_nanoseconds() + spin_nanoseconds;
        for (unsigned spins = 0; atomic_load_explicit(&slot->request, memory_order_acquire) == seen; spins++) {
            cpu_relax();
            if ((spins & 255) == 255 && now_nanoseconds() >= deadline) {
                pthread_mutex_lock(&slot->mutex);
                atomic_store(&slot->sleeping, 1);
                while (atomic_load(&slot->request) == seen) pthread_cond_wait(&slot->wake, &slot->mutex);
                atomic_store(&slot->sleeping, 0);
                pthread_mutex_unlock(&slot->mutex);
            }
        }
        seen = atomic_load_explicit(&slot->request, memory_order_acquire);
        slot->function(slot->context, slot->part);
        atomic_store_explicit(&slot->done, seen, memory_order_release);
    }
    return NULL;
}

/// Starts workers until there are `count` (or as many as could be started); returns how many there are.
static int ensure_workers(int count) {
    while (worker_count < count) {
        worker_slot *slot = &slots[worker_count];
        pthread_mutex_init(&slot->mutex, NULL);
        pthread_cond_init(&slot->wake, NULL);
        atomic_init(&slot->request, 0);
        atomic_init(&slot->done, 0);
        atomic_init(&slot->sleeping, 0);
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, slot);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        worker_count++;
    }
    return worker_count;
}

bool cladon_pool_run(ptrdiff_t parts, void (*_Nonnull function)(void *_Nullable, ptrdiff_t), void *_Nullable context) {
    if (parts < 1) return true;
    if (parts == 1) {
        function(context, 0);
        return true;
    }
    // More parts than processors: spinning workers would take turns with the caller on the same processors.
    static long processors = 0;
    if (processors == 0) processors = sysconf(_SC_NPROCESSORS_ONLN);
    if (parts - 1 > max_workers || parts > processors || pthread_mutex_trylock(&pool_mutex) != 0) return false;
    if (ensure_workers((int)(parts - 1)) < parts - 1) {
        pthread_mutex_unlock(&pool_mutex);
        return false;
    }
    uint64_t sequence[max_workers];
    for (ptrdiff_t w = 0; w < parts - 1; w++) {
        worker_slot *slot = &slots[w];
        slot->function = function;
        slot->context = context;
        slot->part = w + 1;
        sequence[w] = atomic_load_explicit(&slot->request, memory_order_relaxed) + 1;
        atomic_store(&slot->request, sequence[w]);  // sequentially consistent, against the worker's `sleeping`
        if (atomic_load(&slot->sleeping)) {
            pthread_mutex_lock(&slot->mutex);
            pthread_cond_signal(&slot->wake);
            pthread_mutex_unlock(&slot->mutex);
        }
    }
    function(context, 0);
    for (ptrdiff_t w = 0; w < parts - 1; w++) {
        while (atomic_load_explicit(&slots[w].done, memory_order_acquire) != sequence[w]) cpu_relax();
    }
    pthread_mutex_unlock(&pool_mutex);
    return true;
}
