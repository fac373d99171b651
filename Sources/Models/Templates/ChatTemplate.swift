import Tokenizers

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// Who speaks.
    public enum Role: String, Sendable, Codable {
        case system, user, assistant
    }

    /// The speaker.
    public var role: Role
    /// What was said.
    public var content: String

    /// A message.
    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }
}

/// A template name that is not one SafeTune knows, or a model's own template that it
/// does not recognise.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    case unknown(name: String)
    case unrecognised(reason: String)

    public var description: String {
        switch self {
        case let .unknown(name):
            return "chat template '\(name)' is unknown (\(ChatTemplate.Style.allCases.map(\.rawValue).joined(separator: ", ")), plain, auto)"
        case let .unrecognised(reason):
            return "the model's chat template is not recognised (\(reason)); choose one with --template (chatml, llama2, plain)"
        }
    }
}

/// Turns conversations into the text a chat model was trained on, and splits a training
/// example into the prompt (masked out of the loss) and the completion (learned).
///
/// Rendered text carries the template's special tokens as text (`[INST]`, `<|im_start|>`);
/// the tokenizer maps them to their ids. A leading BOS is left to the tokenizer's
/// `addSpecialTokens`, as Hugging Face tokenizers add it.
public struct ChatTemplate: Sendable, Equatable {
    /// The supported layouts.
    public enum Style: String, Sendable, CaseIterable {
        /// Llama-2 chat: `[INST] <<SYS>>…<</SYS>> user [/INST] answer </s>`.
        case llama2
        /// ChatML (Qwen and others): `<|im_start|>role\n…<|im_end|>\n`.
        case chatml
        /// Plain instruction following: `### Instruction:\n…\n\n### Response:\n`.
        case instruction
    }

    /// The layout.
    public let style: Style
    /// Text that ends an assistant turn (and should stop generation); empty for none.
    public let endOfTurn: String
    /// The system message a ChatML template inserts when a conversation starts without one
    /// (SmolLM2's "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
    public let defaultSystem: String?

    /// A template of `style`; `endOfTurn` defaults to the style's own (`</s>`, `<|im_end|>`,
    /// and nothing for `instruction`, which uses the tokenizer's end-of-sequence token when detected).
    public init(style: Style, endOfTurn: String? = nil, defaultSystem: String? = nil) {
        self.style = style
        self.defaultSystem = style == .chatml ? defaultSystem : nil
        switch style {
        case .llama2: self.endOfTurn = endOfTurn ?? "</s>"
        case .chatml: self.endOfTurn = endOfTurn ?? "<|im_end|>"
        case .instruction: self.endOfTurn = endOfTurn ?? ""
        }
    }

    /// The template named `name` (`llama2`, `chatml`, `instruction`, `plain` (recipes' name
    /// for `instruction`), or `auto`: the model's own template when its tokenizer carries
    /// one (an unrecognised one is an error), else detected from the tokenizer's special
    /// tokens); the end-of-turn text follows the tokenizer where it has one.
    public static func named(_ name: String, tokenizer: Tokenizer? = nil) throws(ChatTemplateError) -> ChatTemplate {
        let lower = name.lowercased()
        let key = lower == "plain" ? Style.instruction.rawValue : lower
        if key == "auto" {
            if let source = tokenizer?.chatTemplate { return try ChatTemplate(jinja: source) }
            return tokenizer.map { detect(tokenizer: $0) } ?? ChatTemplate(style: .instruction)
        }
        guard let style = Style(rawValue: key) else { throw .unknown(name: name) }
        if style == .instruction, let tokenizer { return ChatTemplate(style: .instruction, endOfTurn: eosText(tokenizer)) }
        return ChatTemplate(style: style)
    }

    /// Picks the template from the tokenizer's special tokens: ChatML markers → chatml;
    /// `[INST]` or Llama's `<s>`/`</s>` → llama2; otherwise the instruction template
    /// ending with the tokenizer's end-of-sequence token.
    public static func detect(tokenizer: Tokenizer) -> ChatTemplate {
        if tokenizer.id(of: "<|im_start|>") != nil, tokenizer.id(of: "<|im_end|>") != nil {
            return ChatTemplate(style: .chatml)
        }
        if tokenizer.id(of: "[INST]") != nil || (tokenizer.id(of: "<s>") != nil && tokenizer.id(of: "</s>") != nil) {
            return ChatTemplate(style: .llama2)
        }
        return ChatTemplate(style: .instruction, endOfTurn: eosText(tokenizer))
    }

    /// Recognises a model's Jinja chat template as one of the families SafeTune renders,
    /// with its parameters read from the text, instead of interpreting Jinja:
    /// - ChatML (`<|im_start|>role\n…<|im_end|>\n`, generation prompt
    ///   `<|im_start|>assistant\n`); when the template tests that the first message is not a
    ///   system message and holds a literal `<|im_start|>system\n…<|im_end|>`, that text is
    ///   the default system message (SmolLM2's and Qwen2's templates).
    /// - Llama-2 chat (`[INST]`, `<<SYS>>`).
    /// Templates that use tools, documents or other inputs that these families do not model
    /// are not recognised: rendering them without those would be a different prompt.
    public init(jinja source: String) throws(ChatTemplateError) {
        for feature in ["tools", "documents", "tool_calls", "enable_thinking", "namespace("] where source.contains(feature) {
            throw .unrecognised(reason: "it uses '\(feature)'")
        }
        if source.contains("<|im_start|>"), source.contains("<|im_end|>") {
            guard source.contains("add_generation_prompt") else { throw .unrecognised(reason: "a ChatML template without a generation prompt") }
            self.init(style: .chatml, defaultSystem: Self.defaultSystemMessage(source))
        } else if source.contains("[INST]"), source.contains("[/INST]") {
            self.init(style: .llama2)
        } else {
            throw .unrecognised(reason: "neither ChatML nor Llama-2 chat")
        }
    }

    /// The literal system message a ChatML template inserts when the first message is not
    /// a system message, if it has one.
    static func defaultSystemMessage(_ source: String) -> String? {
        // Jinja text may hold the newline itself or the escape `\n`.
        let text = source.replacingOccurrences(of: "\\n", with: "\n")
        let testsFirst = ["messages[0]['role'] != 'system'", "messages[0][\"role\"] != \"system\"", "messages[0].role != 'system'",
                          "messages[0]['role'] == 'system'", "messages[0][\"role\"] == \"system\"", "messages[0].role == 'system'"]
        guard testsFirst.contains(where: text.contains) else { return nil }
        let opening = "<|im_start|>system\n"
        var search = text.startIndex..<text.endIndex
        while let start = text.range(of: opening, range: search) {
            search = start.upperBound..<text.endIndex
            guard let end = text.range(of: "<|im_end|>", range: start.upperBound..<text.endIndex) else { return nil }
            let message = text[start.upperBound..<end.lowerBound]
            // A literal, not the place where the conversation's own system message goes.
            if !message.contains("'"), !message.contains("\""), !message.contains("{"), !message.isEmpty { return String(message) }
        }
        return nil
    }

    private static func eosText(_ tokenizer: Tokenizer) -> String {
        tokenizer.eosTokenId.flatMap { tokenizer.token(of: $0) } ?? ""
    }

    /// The whole conversation as text. With `addGenerationPrompt`, ends where the assistant's
    /// next answer starts (a final assistant message is then not expected).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = false) -> String {
        var out = ""
        var system: String?
        var turns = 0
        if let defaultSystem, let first = messages.first, first.role != .system {
            out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
        }
        for message in messages {
            switch message.role {
            case .system:
                system = message.content
                if style == .chatml { out += "<|im_start|>system\n\(message.content)<|im_end|>\n" }
            case .user:
                out += userTurn(message.content, system: style == .chatml ? nil : system, first: turns == 0)
                system = nil
                turns += 1
            case .assistant:
                out += assistantTurn(message.content)
            }
        }
        if let system, style != .chatml {
            // A system message with no user turn after it still has to appear.
            out += userTurn("", system: system, first: turns == 0)
        }
        if addGenerationPrompt, style == .chatml { out += "<|im_start|>assistant\n" }
        return out
    }

    /// The text of a single-turn prompt, ending where the answer starts.
    public func prompt(_ instruction: String, system: String? = nil) -> String {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: .system, content: system)) }
        messages.append(ChatMessage(role: .user, content: instruction))
        return render(messages, addGenerationPrompt: true)
    }

    /// Splits a conversation whose last message is the assistant's into the prompt (all
    /// before the answer, generation prompt included) and the completion (the answer and
    /// its end-of-turn text), so that prompt + completion == the rendered conversation.
    public func split(_ messages: [ChatMessage]) -> (prompt: String, completion: String) {
        guard let last = messages.last, last.role == .assistant else {
            return (render(messages, addGenerationPrompt: true), "")
        }
        let prompt = render(Array(messages.dropLast()), addGenerationPrompt: true)
        let full = render(messages)
        return (prompt, String(full.dropFirst(prompt.count)))
    }

    /// Token ids of a conversation ending with the assistant's answer, and how many leading
    /// ids belong to the prompt (their labels are -100 in training). The prompt length is
    /// the common prefix of the full encoding and the prompt's own, so a token spanning the
    /// boundary counts as completion.
    public func encode(_ messages: [ChatMessage], tokenizer: Tokenizer) -> (ids: [Int], promptLength: Int) {
        let (prompt, completion) = split(messages)
        let ids = tokenizer.encode(prompt + completion)
        let promptIds = tokenizer.encode(prompt)
        var n = 0
        while n < min(ids.count, promptIds.count), ids[n] == promptIds[n] { n += 1 }
        return (ids, n)
    }

    private func userTurn(_ content: String, system: String?, first: Bool) -> String {
        switch style {
        case .llama2:
            let sys = system.map { "<<SYS>>\n\($0)\n<</SYS>>\n\n" } ?? ""
            return (first ? "" : "<s>") + "[INST] \(sys)\(content) [/INST]"
        case .chatml:
            return "<|im_start|>user\n\(content)<|im_end|>\n"
        case .instruction:
            let sys = system.map { "\($0)\n\n" } ?? ""
            return (first ? "" : "\n\n") + "\(sys)### Instruction:\n\(content)\n\n### Response:\n"
        }
    }

    private func assistantTurn(_ content: String) -> String {
        switch style {
        case .llama2: return " \(content) \(endOfTurn)"
        case .chatml: return "<|im_start|>assistant\n\(content)<|im_end|>\n"
        case .instruction: return content + endOfTurn
        }
    }
}
