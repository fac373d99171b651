import Engine
import Foundation
import Testing
import TestSupport

/// `safetune bench` through the real binary: the JSON rows a comparison script reads, and
/// the one-line error for a bad configuration name.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct BenchCLITests {
    /// The keys `scripts/bench-compare` reads from every row.
    struct Row: Decodable {
        let config, mode: String
        let tokens_per_s, median_s, gflop_per_step, achieved_gflops, sgemm_gflops, percent_of_sgemm, peak_rss_mb: Double
        let steps, warmup, threads: Int
        let loadavg_1m: [Double]
    }

    @Test func rowsAreMeasuredInChildProcesses() throws {
        let r = try BuiltBinary.safetune.run("bench", "--configs", "1m", "--modes", "forward,generate",
                                             "--steps", "2", "--warmup", "0", "--threads", "1", "--json")
        #expect(r.status == 0, "stderr: \(r.err)")
        let rows = try JSONDecoder().decode([Row].self, from: Data(r.out.utf8))
        #expect(rows.map(\.mode) == ["forward", "generate"])
        for row in rows {
            #expect(row.config == "1m" && row.steps == 2 && row.warmup == 0 && row.threads == 1)
            #expect(row.tokens_per_s > 0 && row.median_s > 0 && row.gflop_per_step > 0 && row.sgemm_gflops > 0)
            // tokens/s and GFLOP/s both follow from the median time.
            #expect(abs(row.achieved_gflops - row.gflop_per_step / row.median_s) < 1e-6 * row.achieved_gflops + 1e-9)
            #expect(abs(row.percent_of_sgemm - 100 * row.achieved_gflops / row.sgemm_gflops) < 1e-6 * row.percent_of_sgemm + 1e-9)
            #expect(row.peak_rss_mb > 0 && row.loadavg_1m.count == 2)
        }
    }

    /// On a CPU whose flags allow faster kernels, the binary never runs OpenBLAS's generic
    /// ones (it restarts itself with `OPENBLAS_CORETYPE` set), and a kernel set the user
    /// names is kept.
    @Test func runsTheKernelsTheCPUSupports() throws {
        func blas(_ environment: [String: String] = [:]) throws -> String {
            let r = try BuiltBinary.safetune.run(["bench", "--configs", "1m", "--modes", "forward", "--steps", "1", "--warmup", "0",
                                                  "--json"], environment: environment)
            #expect(r.status == 0, "stderr: \(r.err)")
            struct Row: Decodable { let blas: String }
            return try JSONDecoder().decode([Row].self, from: Data(r.out.utf8)).first?.blas ?? ""
        }
        #expect(try blas(["OPENBLAS_CORETYPE": "Prescott"]).contains("Prescott"))
        if BLASCore.supported(flags: BLASCore.cpuFlags()) != nil, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            let chosen = try blas()
            #expect(!chosen.contains("Prescott"), "\(chosen)")
        }
    }

    @Test func unknownConfigurationIsOneLine() throws {
        let r = try BuiltBinary.safetune.run("bench", "--configs", "3m", "--modes", "forward")
        #expect(r.status == 2 && !r.crashed)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error:") && lines[0].contains("3m"), "stderr: \(r.err)")
    }
}
