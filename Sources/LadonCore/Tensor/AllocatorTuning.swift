// Opt-in malloc settings for processes that run the model over and over (the CLI, the edge service).
#if os(Linux)
import CLadonKernels
#endif

/// Process-wide allocator settings for repeated inference.
///
/// Every layer returns a fresh tensor, and the big ones (16 MB for the encoder's first activation, 11–22 MB in the
/// decoder and the FPN, 50 MB for the 1000 pooled RoIs of the box head) are above glibc's default `mmap` threshold:
/// each is mapped, page-faulted and zeroed by the kernel, then unmapped, once per image. ``keepLargeBlocksForReuse()``
/// makes glibc serve every block from its heap and keep up to 256 MB of freed heap, so the next image reuses the
/// same pages.
public enum AllocatorTuning {
    /// Sets glibc's `M_MMAP_THRESHOLD` to 32 MB (its maximum), `M_TRIM_THRESHOLD` to 256 MB, `M_MMAP_MAX` to 0 (no
    /// block gets its own mapping: the threshold alone still maps blocks over 32 MB, like the RoI features) and
    /// `M_ARENA_MAX` to 1 (every thread allocates from the main heap: a thread's own arena keeps big blocks in 64 MB
    /// heaps that glibc unmaps as soon as they are empty, whatever the trim threshold, so the edge service, which runs
    /// the model on a worker thread, page-faulted 28,200 times per request; now 26). Call it once, early, before other
    /// threads allocate (`ladon` does, first thing, for every command; the test process as it starts). Whole model on
    /// Zen 3, 2 threads, three interleaved A/B runs (`Scripts/bench/compare_binaries.py`, 4–6 rounds; the machine was
    /// shared and noisy): decoder + body
    /// 0.88–0.97× the time, segmentation 0.88–0.92×, encoder 0.96–1.07×, detection 0.92–1.04×; peak resident
    /// memory of `ladon infer` +3–6 MB. `M_MMAP_MAX` 0 on Zen 5 (with the RoIAlign C kernel, one A/B run): page faults
    /// per further image 12,200 → 440, detection 0.85×. Does nothing where the C library is not glibc.
    public static func keepLargeBlocksForReuse() {
        #if os(Linux) && canImport(Glibc)
        cladon_malloc_keep_large_blocks()
        #endif
    }
}
