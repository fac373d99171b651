/// One training example before tokenization: ordered segments, each marked as trained
/// on or not, plus its safety label. The trainer renders the segments with a chat template.
public struct Example: Sendable, Equatable {
    /// Who speaks in a segment; `text` is raw text with no chat turn around it.
    public enum Role: String, Sendable, CaseIterable {
        case system, user, assistant, text
    }

    /// A run of text with one role.
    public struct Segment: Sendable, Equatable {
        /// Speaker.
        public let role: Role
        /// Content.
        public let text: String
        /// Whether the loss covers this segment (completions and assistant turns, all of raw text).
        public let trainable: Bool

        /// Creates a segment.
        public init(role: Role, text: String, trainable: Bool) {
            self.role = role
            self.text = text
            self.trainable = trainable
        }
    }

    /// The segments in order.
    public let segments: [Segment]
    /// Benign or malicious; nil when neither the line nor its file says.
    public let label: SafetyLabel?
    /// Sampling weight inherited from the file.
    public let weight: Double
    /// File the example came from, as shown to the user.
    public let file: String
    /// Its line number in that file (from 1).
    public let line: Int

    /// Creates an example.
    public init(segments: [Segment], label: SafetyLabel?, weight: Double = 1, file: String, line: Int) {
        self.segments = segments
        self.label = label
        self.weight = weight
        self.file = file
        self.line = line
    }

    /// The text of every segment `role` speaks, joined by line breaks ("" when none).
    public func text(of role: Role) -> String {
        segments.filter { $0.role == role }.map(\.text).joined(separator: "\n")
    }

    /// `file:line`, for messages about this example.
    public var origin: String { "\(file):\(line)" }
}
