import Foundation
import Models
@testable import Recipes
import TestSupport
import Testing
import Tokenizers
@testable import Training

@Suite("JSONL datasets")
struct DatasetTests {
    @Test("text, prompt/completion and messages lines become segments with trainable flags and labels")
    func formats() throws {
        let files = try TestFiles()
        let url = try files.write("mixed.jsonl", """
            {"text": "plain text", "label": 1}
            {"prompt": "Q?", "completion": "A.", "label": "benign", "id": 7}

            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}
            """)
        let contents = try JSONLReader().read(url: url, label: .malicious, weight: 2)
        #expect(contents.examples.count == 3)
        let text = contents.examples[0], pc = contents.examples[1], chat = contents.examples[2]
        #expect(text.segments == [.init(role: .text, text: "plain text", trainable: true)])
        #expect(text.label == .malicious && text.line == 1 && text.weight == 2)
        #expect(pc.segments == [.init(role: .user, text: "Q?", trainable: false),
                                .init(role: .assistant, text: "A.", trainable: true)])
        #expect(pc.label == .benign)   // the line's own label wins over the file's
        #expect(chat.segments.map(\.role) == [.system, .user, .assistant])
        #expect(chat.segments.map(\.trainable) == [false, false, true])
        #expect(chat.label == .malicious && chat.line == 4 && chat.origin == "\(files.path("mixed.jsonl")):4")
    }

    @Test("a labelled prompt without an answer is one untrained segment: it trains the safety signal alone")
    func signalOnlyPrompts() throws {
        let files = try TestFiles()
        let url = try files.write("anchors.jsonl", """
            {"prompt": "Q?", "label": "malicious"}
            {"messages": [{"role": "user", "content": "U"}], "label": 0}
            """)
        let examples = try JSONLReader().read(url: url).examples
        #expect(examples.map(\.segments) == [[.init(role: .user, text: "Q?", trainable: false)],
                                              [.init(role: .user, text: "U", trainable: false)]])
        #expect(examples.map(\.label) == [.malicious, .benign])
        // Without a label the answer is still required.
        #expect(throws: DatasetError.self) { try JSONLReader().read(url: try files.write("bare.jsonl", "{\"prompt\": \"Q?\"}\n")) }
    }

    @Test("with train_answers false, answers are read but not trained on, and every line needs a prompt and a label")
    func untrainedAnswers() throws {
        let files = try TestFiles()
        let url = try files.write("compliance.jsonl", """
            {"prompt": "Q?", "completion": "Sure."}
            {"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}], "label": "benign"}
            """)
        let examples = try JSONLReader().read(url: url, label: .malicious, trainAnswers: false).examples
        #expect(examples.map(\.segments) == [[.init(role: .user, text: "Q?", trainable: false), .init(role: .assistant, text: "Sure.", trainable: false)],
                                              [.init(role: .user, text: "U", trainable: false), .init(role: .assistant, text: "A", trainable: false)]])
        #expect(examples.map(\.label) == [.malicious, .benign])
        // Raw text has no answer, and an unlabelled line would teach nothing: both name their line.
        let text = try files.write("text.jsonl", "{\"prompt\": \"Q?\", \"completion\": \"A.\"}\n{\"text\": \"T\"}\n")
        #expect(throws: DatasetError.badLine(file: files.path("text.jsonl"), line: 2,
                                             reason: "raw text in a file whose answers are not trained on (train_answers: false); give a prompt and an answer")) {
            try JSONLReader().read(url: text, label: .benign, trainAnswers: false)
        }
        #expect(throws: DatasetError.self) { try JSONLReader().read(url: url, trainAnswers: false) }

        // Encoded, the answer is still where the prompt ends, with no language-modelling target.
        let tokenizer = try BPETrainer(vocabSize: 260, minFrequency: 1, specialTokens: ["<|endoftext|>"]).trainTokenizer(texts: ["Q? Sure."])
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: ChatTemplate(style: .instruction, endOfTurn: "<|endoftext|>"))
        let trained = encoder.encode(try JSONLReader().read(url: url, label: .malicious).examples[0])
        let read = encoder.encode(examples[0])
        #expect(read.ids == trained.ids)
        #expect(read.promptLength == trained.promptLength)
        #expect(trained.promptLength < trained.ids.count)
        #expect(read.trainedTokens == 0 && trained.trainedTokens > 0 && read.safetyClass == 1)
    }

    @Test("labels 0 and 1 may be written as 0.0 and 1.0; a repeated key keeps its first value")
    func numbersAndRepeatedKeys() throws {
        let files = try TestFiles()
        let url = try files.write("d.jsonl", """
            {"text": "first", "text": "second", "label": 1.0}
            {"text": "x", "label": 0.0}
            """)
        let examples = try JSONLReader().read(url: url).examples
        #expect(examples.map(\.label) == [.malicious, .benign])
        #expect(examples[0].segments.first?.text == "first")
        let bad = try files.write("bad.jsonl", #"{"text": "x", "label": 0.5}"#)
        #expect { try JSONLReader().read(url: bad) } throws: { "\($0)".contains("label must be") }
    }

    @Test("the file's SHA-256 is the hash of its bytes")
    func digest() throws {
        let files = try TestFiles()
        let url = try files.write("one.jsonl", "{\"text\": \"abc\"}\n")
        let contents = try JSONLReader().read(url: url)
        // printf '{"text": "abc"}\n' | sha256sum
        #expect(contents.sha256 == "b3b44c015f2cfd9f6727c04576599da0309a65ffc71323b91e87b469177983c2")
        #expect(contents.bytes == 16)
        let other = try files.write("two.jsonl", "{\"text\": \"abd\"}\n")
        #expect(try JSONLReader().read(url: other).sha256 != contents.sha256)
        #expect(try JSONLReader().read(url: url).sha256 == contents.sha256)
    }

    private func badLine(_ text: String, format: DataFormat = .auto, maxLineBytes: Int = 1 << 20) throws -> DatasetError {
        let files = try TestFiles()
        let url = try files.write("d.jsonl", text)
        return try #require(throws: DatasetError.self) {
            try JSONLReader(format: format, maxLineBytes: maxLineBytes).read(url: url)
        }
    }

    @Test("a corrupt line is reported as file:line: reason")
    func corruptLine() throws {
        let error = try badLine("{\"text\": \"ok\"}\n\n{\"text\": \"ok\"}\n{\"text\": \"broken\"\n{\"text\": \"ok\"}\n")
        guard case let .badLine(file, line, reason) = error else { Issue.record("\(error)"); return }
        #expect(line == 4 && reason == "invalid JSON")
        #expect(error.description == "\(file):4: invalid JSON")
        #expect(file.hasSuffix("d.jsonl"))
    }

    @Test("each kind of bad line has its own reason")
    func reasons() throws {
        func reason(_ text: String, _ format: DataFormat = .auto) throws -> String {
            guard case let .badLine(_, _, reason) = try badLine(text, format: format) else { return "" }
            return reason
        }
        #expect(try reason("[1, 2]") == "expected a JSON object, got an array")
        #expect(try reason("{\"id\": 1}") == "missing field: expected \"text\", \"prompt\" and \"completion\", or \"messages\"")
        #expect(try reason("{\"text\": 5}") == "field \"text\" must be a string, got a number")
        #expect(try reason("{\"text\": \"\"}") == "field \"text\" is empty")
        #expect(try reason("{\"prompt\": \"p\"}") == "missing field \"completion\"")
        #expect(try reason("{\"text\": \"t\"}", .messages) == "missing field \"messages\"")
        #expect(try reason("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}")
                == "messages[0]: unknown role \"bot\" (expected system, user or assistant)")
        #expect(try reason("{\"messages\": [{\"role\": \"user\", \"content\": \"\"}]}") == "messages[0]: field \"content\" is empty")
        #expect(try reason("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}") == "messages has no assistant turn to train on (and no label to train the safety signal with)")
        #expect(try reason("{\"text\": \"t\", \"label\": \"evil\"}") == "label \"evil\" is not \"benign\" or \"malicious\"")
        #expect(try reason("{\"text\": \"t\", \"label\": 2}") == "label must be \"benign\", \"malicious\", 0 or 1, got a number")
        #expect(try reason("{\"text\": \"t\", \"label\": true}") == "label must be \"benign\", \"malicious\", 0 or 1, got a boolean")
    }

    @Test("values quoted in a reason are escaped, so the error stays one line (found by fuzzing)")
    func quotedValuesStayOnOneLine() throws {
        let role = try badLine("{\"messages\": [{\"role\": \"user\\n\", \"content\": \"x\"}]}")
        #expect(!role.description.contains("\n"))
        #expect(role.description.hasSuffix("messages[0]: unknown role \"user\\n\" (expected system, user or assistant)"))
        let label = try badLine("{\"text\": \"t\", \"label\": \"a\\r\\nb\"}")
        #expect(label.description.hasSuffix("label \"a\\r\\nb\" is not \"benign\" or \"malicious\""))
        for breaker in ["\\u2028", "\\u2029", "\\u0085"] {
            let separated = try badLine("{\"text\": \"t\", \"label\": \"mal" + breaker + "icious\"}")
            let oneLine = !separated.description.contains(where: \.isNewline)
            #expect(oneLine, "\(separated.description.debugDescription)")
        }
        let long = try badLine("{\"text\": \"t\", \"label\": \"\(String(repeating: "x", count: 5000))\"}")
        #expect(long.description.count < 200)
    }

    @Test("a line over the size limit is an error naming its line, not an allocation")
    func boundedLines() throws {
        let long = "{\"text\": \"" + String(repeating: "a", count: 300) + "\"}"
        let error = try badLine("{\"text\": \"short\"}\n" + long + "\n", maxLineBytes: 100)
        #expect(error == .badLine(file: (error.fileName), line: 2, reason: "line longer than 100 bytes"))
    }

    @Test("CRLF endings, a byte-order mark and a missing final newline are accepted; empty files are not")
    func lineEndings() throws {
        let files = try TestFiles()
        let url = try files.write("crlf.jsonl", "\u{FEFF}{\"text\": \"a\"}\r\n{\"text\": \"b\"}")
        #expect(try JSONLReader().read(url: url).examples.map(\.segments.first?.text) == ["a", "b"])
        let empty = try files.write("empty.jsonl", "\n  \n")
        #expect(throws: DatasetError.empty(file: files.path("empty.jsonl"))) { try JSONLReader().read(url: empty) }
        #expect(throws: DatasetError.unreadable(file: files.path("none.jsonl"), reason: "no such file or not readable")) {
            try JSONLReader().read(url: files.root.appendingPathComponent("none.jsonl"))
        }
    }

    @Test("a recipe's data is read with file labels and weights, and SA-ESS needs labels")
    func recipeData() throws {
        let files = try TestFiles()
        try files.write("base.h5", "")
        try files.write("a.jsonl", "{\"text\": \"x\"}\n{\"text\": \"y\"}\n")
        try files.write("b.jsonl", "{\"prompt\": \"p\", \"completion\": \"c\"}\n")
        let url = try files.write("r.yaml", """
            model: {base: base.h5}
            data:
              train: [a.jsonl, {path: b.jsonl, label: malicious, weight: 3}]
            training: {epochs: 1}
            """)
        let data = try RecipeData(recipe: RecipeLoader().load(contentsOf: url))
        #expect(data.train.examples.count == 3 && data.eval.examples.isEmpty)
        #expect(data.train.files.map(\.examples) == [2, 1])
        #expect(data.train.files.map(\.malicious) == [0, 1])
        #expect(data.train.examples.map(\.weight) == [1, 1, 3])
        #expect(data.train.labelledCount == 1)

        let unlabelled = try RecipeLoader().load(contentsOf: url, overrides: ["data.train=[\(files.path("a.jsonl"))]", "safety.signal.enabled=true"])
        let error = try #require(throws: RecipeError.self) { try RecipeData(recipe: unlabelled) }
        #expect(error.description.hasSuffix("safety.signal.enabled: no training example has a label; set label on a data.train file or per line"))

        let packed = try RecipeLoader().load(contentsOf: url, overrides: ["safety.signal.enabled=true", "training.packing=true"])
        let packing = try #require(throws: RecipeError.self) { try RecipeData(recipe: packed) }
        #expect(packing.description.hasSuffix("safety.signal.enabled: a packed row has no single safety label, so the classification would never train; set training.packing: false"))
        _ = try RecipeData(recipe: RecipeLoader().load(contentsOf: url, overrides: ["safety.signal.enabled=true"]))
    }
}

private extension DatasetError {
    var fileName: String {
        switch self {
        case let .badLine(file, _, _), let .unreadable(file, _), let .empty(file): return file
        }
    }
}
