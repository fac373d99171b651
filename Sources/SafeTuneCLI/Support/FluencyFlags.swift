import ArgumentParser
import Safety

/// Fluency restoration after purification as command-line options, shared by `purify` and
/// `vax-experiment` so the experiment can measure any setting `purify` offers.
struct FluencyFlags: ParsableArguments {
    @Option(help: "Fluency restoration learning rate.")
    var fluencyLr = PurifierSettings().fluencyLearningRate

    @Option(help: "Fluency restoration epochs over its clean samples.")
    var fluencyEpochs = PurifierSettings().fluencyEpochs

    @Option(help: "Clean samples for fluency restoration.")
    var fluencySamples = PurifierSettings().fluencySamples

    /// Writes the flags into `settings`.
    func apply(to settings: inout PurifierSettings) {
        settings.fluencyLearningRate = fluencyLr
        settings.fluencyEpochs = fluencyEpochs
        settings.fluencySamples = fluencySamples
    }
}
