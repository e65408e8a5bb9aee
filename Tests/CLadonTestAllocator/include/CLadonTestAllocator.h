// The test process allocates as `ladon` does (see TestAllocator.c).
#ifndef CLADON_TEST_ALLOCATOR_H
#define CLADON_TEST_ALLOCATOR_H

#include <stdbool.h>

/// Whether the allocator settings of `AllocatorTuning.keepLargeBlocksForReuse()` were applied when the test process
/// started (glibc only; false elsewhere).
bool cladon_test_allocator_tuned(void);

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`; -1 where that is not available).
long cladon_test_thread_minor_faults(void);

#endif
