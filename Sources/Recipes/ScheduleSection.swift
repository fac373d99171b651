import Engine
import Training

/// `schedule`: how the learning rate moves over the run.
public struct ScheduleSection: Sendable, Equatable {
    /// Shape after warmup.
    public let kind: LearningRateSchedule.Kind
    /// Linear warmup steps from 0 to the peak rate.
    public let warmupSteps: Int

    init(reading r: MappingReader) throws {
        kind = try r.choice("kind", default: LearningRateSchedule.Kind.cosine)
        warmupSteps = try r.int("warmup_steps", default: 0, range: .atLeast(0))
    }

    var canonical: CanonicalValue {
        .object([("kind", .string(kind.rawValue)), ("warmup_steps", .int(warmupSteps))])
    }
}
