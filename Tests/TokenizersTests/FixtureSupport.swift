import Foundation
import Testing
@testable import Tokenizers

/// Reads the committed fixtures (tokenizer.json files and the ids the reference library gave).
enum Fixtures {
    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
                     "missing fixture \(name)")
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func tokenizer(_ kind: String) throws -> Tokenizer { try Tokenizer(contentsOf: url(kind + ".json")) }

    /// The expectations of one tokenizer kind for every text.
    struct Expected {
        let texts: [String]
        let vocabSize: Int
        let cases: [Case]
    }

    /// Ids and decodes for one text.
    struct Case {
        let ids: [Int]
        let idsPlain: [Int]
        let decoded: String
        let decodedSkip: String
    }

    static func expected(_ kind: String, file: String = "expected.json") throws -> Expected {
        let root = try #require(try JSONSerialization.jsonObject(with: data(file)) as? [String: Any])
        let texts = try #require(root["texts"] as? [String])
        let all = try #require(root["tokenizers"] as? [String: Any])
        let entry = try #require(all[kind] as? [String: Any], "no expectations for \(kind)")
        let cases = try #require(entry["cases"] as? [[String: Any]])
        return Expected(texts: texts, vocabSize: try #require(entry["vocab_size"] as? Int), cases: try cases.map { c in
            Case(ids: try #require(c["ids"] as? [Int]), idsPlain: try #require(c["ids_plain"] as? [Int]),
                 decoded: try #require(c["decoded"] as? String), decodedSkip: try #require(c["decoded_skip"] as? String))
        })
    }
}
