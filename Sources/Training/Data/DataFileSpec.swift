import Foundation

/// One data file named by a recipe, with the label and weight it gives every line.
public struct DataFileSpec: Sendable, Equatable {
    /// The file.
    public let path: RecipePath
    /// Label for lines without their own; nil leaves them unlabelled.
    public let label: SafetyLabel?
    /// Sampling weight relative to the other files.
    public let weight: Double
    /// Whether the answers are language-modelling targets; false: they only train the
    /// SA-ESS classification (the guard's answer probes), e.g. harmful prompts with compliant
    /// answers, which the model must recognise and never learn to write.
    public let trainAnswers: Bool

    /// Creates a spec.
    public init(path: RecipePath, label: SafetyLabel? = nil, weight: Double = 1, trainAnswers: Bool = true) {
        self.path = path
        self.label = label
        self.weight = weight
        self.trainAnswers = trainAnswers
    }
}
