import ArgumentParser
import Foundation
import Tokenizers

/// `safetune tokenize`: encodes text (or decodes ids) with a tokenizer.json.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text, or the text of ids."
    )

    @Option(name: .long, help: "A tokenizer.json file.")
    var tokenizer: String

    @Option(name: .long, help: "Text to encode.")
    var text: String?

    @Option(name: .long, help: "A UTF-8 file whose text to encode.")
    var textFile: String?

    @Option(name: .long, help: "Comma-separated ids to decode instead of encoding text.")
    var ids: String?

    @Flag(name: .long, help: "Do not add the post-processor's special tokens (e.g. <s>).")
    var noSpecialTokens = false

    @Flag(name: .long, help: "Leave special tokens out when decoding.")
    var skipSpecialTokens = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard [text != nil, textFile != nil, ids != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --text, --text-file or --ids")
        }
    }

    func run() throws { try CommandFailure.guarding { try execute() } }

    /// The command's work; a thrown error becomes one `error:` line and exit status 2.
    private func execute() throws {
        let tok = try Tokenizer(contentsOf: URL(fileURLWithPath: tokenizer))
        let encoded: [Int]
        if let ids {
            encoded = try ids.split(separator: ",").map { part in
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                guard let id = Int(trimmed) else { throw ValidationError("--ids: '\(trimmed)' is not an integer") }
                return id
            }
        } else if let textFile {
            guard let data = FileManager.default.contents(atPath: textFile), let fileText = String(data: data, encoding: .utf8) else {
                throw TokenizerError.unreadable(file: textFile, reason: "missing or not valid UTF-8")
            }
            let clock = ContinuousClock()
            var result: [Int] = []
            let elapsed = clock.measure { result = tok.encode(fileText, addSpecialTokens: !noSpecialTokens) }
            encoded = result
            if !json {
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                FileHandle.standardError.write(Data("encoded \(data.count) bytes into \(result.count) tokens in \(String(format: "%.3f", seconds)) s\n".utf8))
            }
        } else {
            encoded = tok.encode(text ?? "", addSpecialTokens: !noSpecialTokens)
        }
        let decoded = tok.decode(encoded, skipSpecialTokens: skipSpecialTokens)
        if json {
            let out: JSONValue = .object([
                ("ids", .array(encoded.map { .int($0) })),
                ("tokens", .array(encoded.map { tok.token(of: $0).map(JSONValue.string) ?? .null })),
                ("decoded", .string(decoded)),
            ])
            FileHandle.standardOutput.write(out.serialized())
        } else if self.ids != nil {
            print(decoded)
        } else {
            print(encoded.map(String.init).joined(separator: " "))
        }
    }
}
