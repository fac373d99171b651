import Foundation

/// A learning-rate multiplier over training (Hugging Face's schedules): a linear
/// warm-up from 0 over `warmupSteps`, then constant, linear decay to 0, or cosine
/// decay to 0 at `totalSteps`.
public struct LearningRateSchedule: Sendable, Codable, Equatable {
    /// The shape after warm-up.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Stays at 1.
        case constant
        /// Falls linearly to 0 at the last step.
        case linear
        /// Half a cosine from 1 to 0 at the last step.
        case cosine
    }

    /// The shape after warm-up.
    public var kind: Kind
    /// Steps of linear warm-up from 0.
    public var warmupSteps: Int

    /// A schedule of `kind` with `warmupSteps` of warm-up.
    public init(_ kind: Kind, warmupSteps: Int = 0) {
        self.kind = kind
        self.warmupSteps = max(0, warmupSteps)
    }

    /// Constant after warm-up.
    public static func constant(warmupSteps: Int = 0) -> LearningRateSchedule { .init(.constant, warmupSteps: warmupSteps) }
    /// Linear decay after warm-up.
    public static func linear(warmupSteps: Int = 0) -> LearningRateSchedule { .init(.linear, warmupSteps: warmupSteps) }
    /// Cosine decay after warm-up.
    public static func cosine(warmupSteps: Int = 0) -> LearningRateSchedule { .init(.cosine, warmupSteps: warmupSteps) }

    /// The factor for the learning rate of 0-based `step` out of `totalSteps`:
    /// `step / warmup` during warm-up, then the decay shape over the remaining steps.
    public func multiplier(step: Int, totalSteps: Int) -> Float {
        if step < warmupSteps { return Float(step) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        switch kind {
        case .constant: return 1
        case .linear: return Float(1 - progress)
        case .cosine: return Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
