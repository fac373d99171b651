import ArgumentParser
import Safety

/// The SA-ESS guard's settings as command-line options, shared by `generate --guard` and
/// `eval --guard` so an evaluation measures the guard a user will deploy.
struct GuardFlags: ParsableArguments {
    @OptionGroup var checks: GuardCheckFlags

    @Option(help: "P(malicious) at or above which a check is malicious (default: the checkpoint's calibrated threshold, else 0.5).")
    var threshold: Float?

    func validate() throws {
        if let threshold, !(threshold > 0 && threshold <= 1) { throw ValidationError("--threshold must be in (0, 1]") }
    }

    /// The guard these flags describe.
    var options: GuardOptions { checks.options(threshold: threshold) }
}

/// How the guard checks, without its threshold: what `calibrate-guard` calibrates for.
struct GuardCheckFlags: ParsableArguments {
    @Option(help: "Guard re-check schedule: every, first, periodic, annealing.")
    var schedule: String = "annealing"

    @Option(help: "Tokens between checks for the periodic schedule.")
    var period: Int = 8

    @Option(help: "Consecutive malicious checks that insert the refusal mid-answer.")
    var tau = GuardOptions().tau

    @Option(help: "Refusal prefix inserted by the guard.")
    var refusalPrefix: String = GuardOptions().refusalPrefix

    @Flag(name: .customLong("parent-guard"), inversion: .prefixedNo,
          help: "Also read the head of the model's parent at every check (the larger P counts), when the checkpoint is a fine-tune of a model with a calibrated safety signal (the aligned SmolLM2).")
    var parentGuard = true

    func validate() throws {
        if CheckSchedule(name: schedule, period: period) == nil {
            throw ValidationError("--schedule must be every, first, periodic or annealing")
        }
        if period < 1 { throw ValidationError("--period must be at least 1") }
        if tau < 1 { throw ValidationError("--tau must be at least 1") }
    }

    /// The guard these flags describe, with `threshold` (nil: the calibrated one).
    func options(threshold: Float?) -> GuardOptions {
        GuardOptions(threshold: threshold, schedule: CheckSchedule(name: schedule, period: period) ?? .defaultAnnealing,
                     tau: tau, refusalPrefix: refusalPrefix)
    }
}
