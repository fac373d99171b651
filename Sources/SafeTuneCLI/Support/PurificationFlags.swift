import ArgumentParser
import Safety

extension Neutralisation: ExpressibleByArgument {}

/// How purification neutralises and restores fluency, as command-line options shared by
/// `purify` and `vax-experiment` so the experiment can measure any setting `purify` offers.
struct PurificationFlags: ParsableArguments {
    @Option(help: ArgumentHelp("What a full-weights checkpoint's signature channels are set to: fresh random values (the paper's choice) or the parent's values.",
                               valueName: Neutralisation.allCases.map(\.rawValue).joined(separator: "|")))
    var neutralise = PurifierSettings().neutralisation


    @Option(help: "Fluency restoration learning rate.")
    var fluencyLr = PurifierSettings().fluencyLearningRate

    @Option(help: "Fluency restoration epochs over its clean samples.")
    var fluencyEpochs = PurifierSettings().fluencyEpochs

    @Option(help: "Clean samples for fluency restoration.")
    var fluencySamples = PurifierSettings().fluencySamples

    /// Writes the flags into `settings`.
    func apply(to settings: inout PurifierSettings) {
        settings.neutralisation = neutralise
        settings.fluencyLearningRate = fluencyLr
        settings.fluencyEpochs = fluencyEpochs
        settings.fluencySamples = fluencySamples
    }
}
