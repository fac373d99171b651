import ArgumentParser
import Checkpoints
import Foundation
import SafeTuneFuzz

/// `safetune-fuzz`: the seeded mutation fuzzer for SafeTune's parsers of outside input.
///
/// A crash kills this process (nonzero exit); the input that caused it is left in the
/// scratch folder as `input.<ext>`, and `(seed, iteration)` regenerates it. Checkpoints
/// are read the way `safetune` reads them, through a helper process (`ReadIsolation`);
/// `--in-process` fuzzes libhdf5 itself.
@main
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safetune-fuzz",
        abstract: "Fuzz SafeTune's file parsers with seeded mutations of a seed corpus.",
        subcommands: [Run.self, Replay.self, Seeds.self],
        defaultSubcommand: Run.self)

    static func main() {
        ReadIsolation.bootstrap()
        main(nil)
    }

    /// Isolation as asked: off with `--in-process`; otherwise one kept helper that gives up
    /// on a file after `readSeconds` (libhdf5 loops forever on about 1 % of mutants, so
    /// this limit sets the checkpoint target's speed).
    static func isolate(inProcess: Bool, readSeconds: Double) {
        if inProcess {
            ReadIsolation.disable()
        } else {
            ReadIsolation.enable(.init(executable: ReadIsolation.Helper.currentExecutable(), arguments: [ReadIsolation.helperCommand],
                                       baseSeconds: readSeconds, persistent: true))
        }
    }

    /// Runs one target for a number of inputs or a time budget.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mutate the seeds of one target and run every input through its parser.",
            discussion: "Exit status: 0 no finding, 1 findings (errors of the wrong type or not one line); a crash kills the process.")

        @Option(help: "Parser to fuzz: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")).")
        var target: String
        @Option(help: "Inputs to try (default: unlimited when --seconds is given, else 10000).")
        var iterations: Int?
        @Option(help: "Time budget in seconds.")
        var seconds: Double?
        @Option(help: "Random seed; the same seed repeats the same inputs.")
        var seed: UInt64 = 1
        @Option(help: "Seed corpus folder with one subfolder per target.")
        var corpus = "Fuzz/corpus"
        @Option(help: "Scratch folder for the current input (default: a new temporary folder).")
        var scratch: String?
        @Option(help: "An input that uses this many seconds of processor time (or ten times as long on the clock) is a hang: exit status 3, input kept.")
        var hangSeconds: Double = 20
        @Flag(help: "Read checkpoints in this process instead of a helper (fuzzes libhdf5 itself; a crash ends the run).")
        var inProcess = false
        @Option(help: "Seconds of processor time the checkpoint helper may spend on one input before it is killed and the input rejected.")
        var readSeconds: Double = 1
        @Flag(help: "Print the final report as JSON.")
        var json = false

        func run() throws {
            guard let target = FuzzTarget(rawValue: target) else {
                throw ValidationError("unknown target '\(self.target)'")
            }
            guard readSeconds < hangSeconds else { throw ValidationError("--read-seconds must be below --hang-seconds") }
            FuzzCommand.isolate(inProcess: inProcess, readSeconds: readSeconds)
            let corpusURL = URL(fileURLWithPath: corpus)
            let seeds = try SeedCorpus.load(target, from: corpusURL)
            guard !seeds.isEmpty else { throw ValidationError("no seeds in \(corpus)/\(target.rawValue)") }
            let scratchURL = scratch.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzz-\(target.rawValue)-\(getpid())")
            try FileManager.default.createDirectory(at: scratchURL, withIntermediateDirectories: true)
            try SeedCorpus.prepare(target, corpus: corpusURL, scratch: scratchURL)
            FileHandle.standardError.write(Data("fuzzing \(target.rawValue): \(seeds.count) seeds, seed \(seed), input in \(scratchURL.path)/\(target.inputName)\n".utf8))
            let runner = FuzzRunner(target: target, seeds: seeds, scratch: scratchURL)
            // scratch/progress holds the count of inputs finished, so a run that crashed can be counted.
            let progressFile = scratchURL.appendingPathComponent("progress")
            let watchdog = Watchdog(limit: hangSeconds)
            watchdog.start()
            let report = runner.run(seed: seed, iterations: iterations ?? (seconds == nil ? 10_000 : nil), seconds: seconds, every: 100,
                                    willRun: watchdog.started) { r in
                try? Data("\(r.tried)\n".utf8).write(to: progressFile)
                guard r.tried % 1000 == 0 else { return }
                FileHandle.standardError.write(Data("  \(r.tried) inputs, \(r.accepted) accepted, \(r.findings.count) findings, \(String(format: "%.0f", r.elapsedSeconds)) s\n".utf8))
            }
            for f in report.findings.prefix(20) {
                FileHandle.standardError.write(Data("finding at iteration \(f.iteration): \(f.message)\n".utf8))
            }
            if json {
                let object: [String: Any] = [
                    "target": target.rawValue, "seed": seed, "tried": report.tried, "accepted": report.accepted,
                    "rejected": report.rejected, "findings": report.findings.count, "crashes": 0,
                    "distinct_rejections": report.distinctRejections, "seconds": report.elapsedSeconds,
                    "slowest_seconds": report.slowestSeconds, "slowest_iteration": report.slowestIteration,
                ]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print("\(target.rawValue): \(report.tried) inputs in \(String(format: "%.1f", report.elapsedSeconds)) s, "
                      + "\(report.accepted) accepted, \(report.rejected) rejected (\(report.distinctRejections) distinct errors), "
                      + "\(report.findings.count) findings, 0 crashes; slowest input \(String(format: "%.3f", report.slowestSeconds)) s "
                      + "(iteration \(report.slowestIteration))")
            }
            if !report.findings.isEmpty { throw ExitCode(1) }
        }
    }

    /// Runs saved inputs (e.g. a crash reproducer) through one target.
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run files through one target's parser and print each outcome.")

        @Option(help: "Parser: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")).")
        var target: String
        @Argument(help: "Input files.")
        var files: [String]
        @Flag(help: "Read checkpoints in this process instead of a helper (reproduces a libhdf5 crash).")
        var inProcess = false
        @Option(help: "Seconds the checkpoint helper may spend on one file.")
        var readSeconds: Double = 10

        func run() throws {
            guard let target = FuzzTarget(rawValue: target) else { throw ValidationError("unknown target '\(self.target)'") }
            FuzzCommand.isolate(inProcess: inProcess, readSeconds: readSeconds)
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzz-replay-\(getpid())")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            for file in files {
                let outcome = target.run([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), scratch: scratch)
                print("\(file): \(outcome)")
            }
        }
    }

    /// Regenerates the generated part of the seed corpus.
    struct Seeds: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the generated seeds (tiny checkpoints and safetensors files).")

        @Option(name: .shortAndLong, help: "Corpus folder.")
        var output = "Fuzz/corpus"

        func run() throws {
            try SeedCorpus.write(to: URL(fileURLWithPath: output))
        }
    }
}
