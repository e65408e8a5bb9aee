// The vector types the portable routines are written with, builds of one portable, always-inline C routine for AVX-512 and AVX2 (per-function `target` attributes, so no
// compiler flags: packages that depend on ladon-swift by version get them too) and the CPUID pick between them.
// Private to CLadonKernels; include after "CLadonKernels.h".
#ifndef CLADON_CPU_LEVELS_H
#define CLADON_CPU_LEVELS_H

#include "CLadonKernels.h"

/// 16 floats (or ints) as one vector: a zmm register with AVX-512, two ymm with AVX2, four xmm otherwise.
/// `aligned(4)`: loads and stores through a pointer to it may be unaligned.
typedef float cladon_f16 __attribute__((vector_size(64), aligned(4)));
typedef int cladon_i16 __attribute__((vector_size(64), aligned(4)));

#ifdef CLADON_KERNELS_X86
#ifdef CLADON_EMULATE_AVX512
/// A correctness-check build (`Scripts/check/emulated-avx512.sh`, flags `-DCLADON_EMULATE_AVX512 -mavx2 -mfma`): the
/// AVX-512 code is compiled for AVX2 + FMA (the intrinsics from SIMDe) and CPUID reports AVX-512, so a machine
/// without it runs every AVX-512 path of the library. Never a release build: it is slower than the AVX2 path.
#define CLADON_TARGET_AVX512 __attribute__((target("avx2,fma")))
#else
/// The target attribute of AVX-512 code.
#define CLADON_TARGET_AVX512 __attribute__((target("avx512f")))
#endif

/// Defines `name_avx512` and `name_avx2`, each `name` compiled for that instruction set. `ARGS` is the parameter list
/// in parentheses, `CALL` the argument list in parentheses.
#define CLADON_LEVEL_BUILDS(name, ARGS, CALL)                                                                 \
    CLADON_TARGET_AVX512 static void name##_avx512 ARGS { name CALL; }                                        \
    __attribute__((target("avx2"))) static void name##_avx2 ARGS { name CALL; }

/// Runs the build of `name` for `level` (1 baseline, 2 AVX2, 3 AVX-512; 0 or a level above the CPU's: the best the
/// CPU runs) and returns from the calling function.
#define CLADON_RUN_AT_LEVEL(level, name, CALL)                                                                \
    do {                                                                                                      \
        int known_ = cladon_cpu_level();                                                                      \
        if ((level) >= 1 && (level) < known_) known_ = (level);                                               \
        if (known_ == 3) { name##_avx512 CALL; return; }                                                      \
        if (known_ == 2) { name##_avx2 CALL; return; }                                                        \
        name CALL;                                                                                            \
        return;                                                                                               \
    } while (0)
#else
#define CLADON_LEVEL_BUILDS(name, ARGS, CALL)
#define CLADON_RUN_AT_LEVEL(level, name, CALL)                                                                \
    do {                                                                                                      \
        (void)(level);                                                                                        \
        name CALL;                                                                                            \
        return;                                                                                               \
    } while (0)
#endif

#endif
