import Checkpoints
import Foundation
import Tokenizers

/// Reads a JSONL data file into `Example`s with bounded memory per line, hashing the
/// file's bytes on the way for provenance.
///
/// Accepted lines (other fields are ignored):
/// `{"text": ...}`, `{"prompt": ..., "completion": ...}`,
/// `{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}`,
/// each optionally with `"label": "benign" | "malicious" | 0 | 1`, which overrides the file's label.
/// A labelled prompt without an answer (`{"prompt": ..., "label": ...}`, or messages with no
/// assistant turn) trains the SA-ESS signal alone: its classification counts, no token is
/// a language-modelling target.
public struct JSONLReader: Sendable {
    /// What one file yielded.
    public struct Contents: Sendable {
        /// The examples, in file order.
        public let examples: [Example]
        /// Lowercase hex SHA-256 of the file's bytes.
        public let sha256: String
        /// File size in bytes.
        public let bytes: Int
    }

    /// Line format to expect.
    public var format: DataFormat
    /// A longer line is an error rather than an unbounded allocation.
    public var maxLineBytes: Int

    /// Creates a reader.
    public init(format: DataFormat = .auto, maxLineBytes: Int = 1 << 20) {
        self.format = format
        self.maxLineBytes = maxLineBytes
    }

    /// Reads every line of `url`; lines without a label take `label`, every example gets `weight`.
    /// With `trainAnswers` false, answers are read but never language-modelling targets (they
    /// train the SA-ESS classification only), so every line needs a prompt and a label.
    /// Blank lines are skipped. Throws `DatasetError` naming the first bad line.
    public func read(url: URL, label: SafetyLabel? = nil, weight: Double = 1, trainAnswers: Bool = true) throws -> Contents {
        let display = RecipeLocation.displayPath(url)
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw DatasetError.unreadable(file: display, reason: "no such file or not readable")
        }
        defer { try? handle.close() }

        var hasher = SHA256()
        var examples: [Example] = []
        var line: [UInt8] = []
        line.reserveCapacity(4096)
        var lineNumber = 1, total = 0

        func finishLine() throws {
            defer { line.removeAll(keepingCapacity: true); lineNumber += 1 }
            if lineNumber == 1, line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
            if line.last == 0x0D { line.removeLast() }
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 }) else { return }
            do {
                examples.append(try parse(line, fileLabel: label, weight: weight,
                                          trainAnswers: trainAnswers, file: display, line: lineNumber))
            } catch let problem as LineProblem {
                throw DatasetError.badLine(file: display, line: lineNumber, reason: problem.reason)
            }
        }

        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 16) ?? Data()
            } catch {
                throw DatasetError.unreadable(file: display, reason: "read failed at line \(lineNumber)")
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            total += chunk.count
            var start = chunk.startIndex
            while start < chunk.endIndex {
                let newline = chunk[start...].firstIndex(of: 0x0A)
                let piece = chunk[start..<(newline ?? chunk.endIndex)]
                if line.count + piece.count > maxLineBytes {
                    throw DatasetError.badLine(file: display, line: lineNumber, reason: "line longer than \(maxLineBytes) bytes")
                }
                line.append(contentsOf: piece)
                guard let newline else { break }
                try finishLine()
                start = chunk.index(after: newline)
            }
        }
        if !line.isEmpty { try finishLine() }
        guard !examples.isEmpty else { throw DatasetError.empty(file: display) }
        let digest = TensorDigest.hex(hasher.finalize())
        return Contents(examples: examples, sha256: digest, bytes: total)
    }

    /// Reads the file a recipe names, with its label, weight and whether its answers are trained on.
    public func read(_ spec: DataFileSpec) throws -> Contents {
        try read(url: spec.path.url, label: spec.label, weight: spec.weight, trainAnswers: spec.trainAnswers)
    }

    private struct LineProblem: Error {
        let reason: String
    }

    private func parse(_ bytes: [UInt8], fileLabel: SafetyLabel?, weight: Double,
                       trainAnswers: Bool, file: String, line: Int) throws -> Example {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw LineProblem(reason: "not valid UTF-8") }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: bytes)
        } catch {
            throw LineProblem(reason: "invalid JSON")
        }
        guard let object = Self.fields(value) else {
            throw LineProblem(reason: "expected a JSON object, got \(value.kindName)")
        }
        let label = try Self.label(object["label"]) ?? fileLabel
        var segments: [Example.Segment]
        switch try lineFormat(object) {
        case .text, .auto:
            segments = [Example.Segment(role: .text, text: try Self.content(object, "text"), trainable: true)]
        case .promptCompletion where object["completion"] == nil && label != nil:
            segments = [Example.Segment(role: .user, text: try Self.content(object, "prompt"), trainable: false)]
        case .promptCompletion:
            segments = [Example.Segment(role: .user, text: try Self.content(object, "prompt"), trainable: false),
                        Example.Segment(role: .assistant, text: try Self.content(object, "completion"), trainable: true)]
        case .messages:
            segments = try Self.messages(object["messages"], labelled: label != nil)
        }
        if !trainAnswers {
            if segments.contains(where: { $0.role == .text }) {
                throw LineProblem(reason: "raw text in a file whose answers are not trained on (train_answers: false); give a prompt and an answer")
            }
            guard label != nil else {
                throw LineProblem(reason: "no label, and the file's answers are not trained on (train_answers: false), so the line teaches nothing")
            }
            segments = segments.map { Example.Segment(role: $0.role, text: $0.text, trainable: false) }
        }
        return Example(segments: segments, label: label, weight: weight, file: file, line: line)
    }

    private func lineFormat(_ object: [String: JSONValue]) throws -> DataFormat {
        if format != .auto { return format }
        if object["messages"] != nil { return .messages }
        if object["prompt"] != nil || object["completion"] != nil { return .promptCompletion }
        if object["text"] != nil { return .text }
        throw LineProblem(reason: "missing field: expected \"text\", \"prompt\" and \"completion\", or \"messages\"")
    }

    private static func content(_ object: [String: JSONValue], _ field: String) throws -> String {
        guard let value = object[field] else { throw LineProblem(reason: "missing field \"\(field)\"") }
        guard case let .string(text) = value else {
            throw LineProblem(reason: "field \"\(field)\" must be a string, got \(value.kindName)")
        }
        guard !text.isEmpty else { throw LineProblem(reason: "field \"\(field)\" is empty") }
        return text
    }

    /// An object's fields by name (a repeated key keeps its first value); nil for other values.
    private static func fields(_ value: JSONValue) -> [String: JSONValue]? {
        guard case let .object(pairs) = value else { return nil }
        return Dictionary(pairs, uniquingKeysWith: { first, _ in first })
    }

    private static func label(_ value: JSONValue?) throws -> SafetyLabel? {
        switch value {
        case nil, .null?: return nil
        case let .string(text)?:
            if let label = SafetyLabel(rawValue: text) { return label }
            throw LineProblem(reason: "label \(quoted(text)) is not \"benign\" or \"malicious\"")
        case let .int(n)? where n == 0 || n == 1:
            return n == 0 ? .benign : .malicious
        case let .double(n)? where n == 0 || n == 1:
            return n == 0 ? .benign : .malicious
        case let other?:
            throw LineProblem(reason: "label must be \"benign\", \"malicious\", 0 or 1, got \(other.kindName)")
        }
    }

    /// A value from the file quoted with escapes (a newline in it must not split the
    /// one-line error) and cut to 64 characters.
    private static func quoted(_ text: String) -> String {
        // String(reflecting:) escapes \n and \r but not U+0085, U+2028 or U+2029; oneLine does.
        RecipeError.oneLine(String(reflecting: text.count > 64 ? String(text.prefix(64)) + "…" : text))
    }

    private static func messages(_ value: JSONValue?, labelled: Bool) throws -> [Example.Segment] {
        guard let value else { throw LineProblem(reason: "missing field \"messages\"") }
        guard case let .array(items) = value else {
            throw LineProblem(reason: "field \"messages\" must be an array, got \(value.kindName)")
        }
        guard !items.isEmpty else { throw LineProblem(reason: "field \"messages\" is empty") }
        var segments: [Example.Segment] = []
        for (index, item) in items.enumerated() {
            guard let message = fields(item) else {
                throw LineProblem(reason: "messages[\(index)] must be an object, got \(item.kindName)")
            }
            guard let roleValue = message["role"] else { throw LineProblem(reason: "messages[\(index)]: missing field \"role\"") }
            guard case let .string(roleText) = roleValue else {
                throw LineProblem(reason: "messages[\(index)].role must be a string, got \(roleValue.kindName)")
            }
            guard let role = Example.Role(rawValue: roleText), role != .text else {
                throw LineProblem(reason: "messages[\(index)]: unknown role \(quoted(roleText)) (expected system, user or assistant)")
            }
            let text: String
            do {
                text = try content(message, "content")
            } catch let problem as LineProblem {
                throw LineProblem(reason: "messages[\(index)]: \(problem.reason)")
            }
            segments.append(Example.Segment(role: role, text: text, trainable: role == .assistant))
        }
        guard labelled || segments.contains(where: \.trainable) else {
            throw LineProblem(reason: "messages has no assistant turn to train on (and no label to train the safety signal with)")
        }
        return segments
    }
}
