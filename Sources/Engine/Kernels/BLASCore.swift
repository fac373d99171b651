import CBLAS
import Foundation

/// Which OpenBLAS kernel set runs the matmuls, and the fix for a misdetected CPU.
///
/// OpenBLAS 0.3.21 (Debian bookworm) picks its kernels when the library loads. On CPUs it
/// does not recognise (newer Xeons that name themselves just "Intel(R) Xeon(R) Processor")
/// it falls back to the generic `Prescott` kernels, several times slower (docs/performance.md).
/// `OPENBLAS_CORETYPE` overrides the choice, but only before the library loads.
public enum BLASCore {
    /// The kernel set OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", …).
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The fastest kernel set the CPU's feature flags (as /proc/cpuinfo names them) allow:
    /// SkylakeX with the AVX-512 subsets its kernels use, Haswell with AVX2 and FMA; nil
    /// otherwise.
    public static func supported(flags: Set<String>) -> String? {
        if flags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The CPU's feature flags as /proc/cpuinfo lists them (empty where it cannot be read).
    public static func cpuFlags() -> Set<String> {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }

    /// When OpenBLAS runs its generic kernels on a CPU that supports faster ones, and the user
    /// has not chosen (`OPENBLAS_CORETYPE` unset), runs this program again from the start with
    /// `OPENBLAS_CORETYPE` set. Returns when nothing needs doing or the restart fails.
    public static func restartWithSupportedKernelsIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, name == "Prescott",
              let core = supported(flags: cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed: carry on with the slower kernels.
    }
}
