import Engine
import Testing

/// The kernel set chosen for a misdetected CPU follows its feature flags.
@Suite struct BLASCoreTests {
    @Test func kernelsFollowTheCPUFlags() {
        let avx512: Set<String> = ["fma", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512ifma"]
        #expect(BLASCore.supported(flags: avx512) == "SkylakeX")
        // AVX-512 without the subsets SkylakeX's kernels use (the first Xeon Phi) is an AVX2 machine.
        #expect(BLASCore.supported(flags: ["fma", "avx2", "avx512f", "avx512cd"]) == "Haswell")
        #expect(BLASCore.supported(flags: ["sse3", "avx"]) == nil)
        #expect(!BLASCore.name.isEmpty)
    }
}
