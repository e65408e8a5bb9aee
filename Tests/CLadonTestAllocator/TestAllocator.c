// Applies `AllocatorTuning.keepLargeBlocksForReuse()`'s malloc settings when the test process starts, before the test
// runner starts its threads. Set later (in a suite's init) they come too late for `M_ARENA_MAX`: the runner's threads
// already have arenas of their own, whose emptied 64 MB heaps glibc unmaps, so the benchmarks page-faulted their big
// tensors on every call (205,000 faults in `GEMMPerfTests/encoderLayerTimings`) where `ladon` reuses them.
#define _GNU_SOURCE  // RUSAGE_THREAD
#include "CLadonTestAllocator.h"
#include "CLadonKernels.h"

#if defined(__linux__)
#include <sys/resource.h>
#endif

static bool tuned = false;

__attribute__((constructor)) static void tune_allocator(void) {
#if defined(__linux__) && defined(__GLIBC__)
    cladon_malloc_keep_large_blocks();
    tuned = true;
#endif
}

bool cladon_test_allocator_tuned(void) { return tuned; }

long cladon_test_thread_minor_faults(void) {
#if defined(__linux__) && defined(RUSAGE_THREAD)
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) != 0) return -1;
    return usage.ru_minflt;
#else
    return -1;
#endif
}
