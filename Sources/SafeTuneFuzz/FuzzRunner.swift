import Foundation

/// Feeds one target seeded mutants of its corpus, for a number of inputs or a time
/// budget, and tallies what happened. Inputs the parser accepts join the pool that
/// later mutants start from (bounded), so deeper structure gets explored over time.
public struct FuzzRunner {
    /// Totals of one run.
    public struct Report: Sendable {
        public var target: FuzzTarget
        public var seed: UInt64
        public var tried = 0
        public var accepted = 0
        public var rejected = 0
        /// Findings (bad errors) with the iteration that produced them.
        public var findings: [(iteration: Int, message: String)] = []
        /// The slowest input's time and iteration.
        public var slowestSeconds = 0.0
        public var slowestIteration = -1
        public var elapsedSeconds = 0.0
        /// How many distinct rejection messages (with numbers and names stripped) were seen.
        public var distinctRejections = 0
    }

    public let target: FuzzTarget
    public let seeds: [[UInt8]]
    /// Folder holding the current input (and, for recipes, sibling seeds), and the input of
    /// each finding (`finding-<iteration>-<input name>`).
    public let scratch: URL
    /// Largest number of accepted mutants kept for further mutation.
    public var poolLimit = 256

    /// A runner over `seeds`, writing inputs under `scratch`.
    public init(target: FuzzTarget, seeds: [[UInt8]], scratch: URL) {
        self.target = target
        self.seeds = seeds
        self.scratch = scratch
    }

    /// Runs until `iterations` inputs were tried or `seconds` passed (whichever is set and
    /// comes first). The unmutated seeds go first. `progress` is called every `every` inputs.
    /// `willRun` is called with the iteration number before each input (a hang watchdog's clock).
    public func run(seed: UInt64, iterations: Int?, seconds: Double?, every: Int = 1000,
                    willRun: (Int) -> Void = { _ in }, progress: (Report) -> Void = { _ in }) -> Report {
        var report = Report(target: target, seed: seed)
        var mutator = Mutator(seed: seed, dictionary: target.dictionary)
        var pool = seeds
        var shapes = Set<String>()
        let start = Date()
        var iteration = 0
        while true {
            if let iterations, iteration >= iterations { break }
            if let seconds, Date().timeIntervalSince(start) >= seconds { break }
            let input: [UInt8]
            if iteration < seeds.count {
                input = seeds[iteration]
            } else {
                input = mutator.mutate(pool[mutator.below(pool.count)], others: seeds)
            }
            willRun(iteration)
            let t0 = Date()
            let outcome = target.run(input, scratch: scratch)
            let dt = Date().timeIntervalSince(t0)
            if dt > report.slowestSeconds { report.slowestSeconds = dt; report.slowestIteration = iteration }
            switch outcome {
            case .accepted:
                report.accepted += 1
                if iteration >= seeds.count {
                    if pool.count < seeds.count + poolLimit { pool.append(input) } else { pool[seeds.count + mutator.below(poolLimit)] = input }
                }
            case let .rejected(message):
                report.rejected += 1
                shapes.insert(String(message.filter { !$0.isNumber }.prefix(120)))
            case let .badError(message):
                report.findings.append((iteration, message))
                // Kept for replay: `finding-<iteration>-input.h5` beside the scratch input.
                try? Data(input).write(to: scratch.appendingPathComponent("finding-\(iteration)-\(target.inputName)"))
            }
            iteration += 1
            report.tried = iteration
            if iteration % every == 0 {
                report.elapsedSeconds = Date().timeIntervalSince(start)
                report.distinctRejections = shapes.count
                progress(report)
            }
        }
        report.elapsedSeconds = Date().timeIntervalSince(start)
        report.distinctRejections = shapes.count
        return report
    }
}
