import Foundation
import Testing
import Tokenizers
@testable import Models

@Suite struct ChatTemplateTests {
    let conversation = [
        ChatMessage(role: .system, content: "Be brief."),
        ChatMessage(role: .user, content: "Hi?"),
        ChatMessage(role: .assistant, content: "Hello."),
    ]

    @Test func llama2Layout() {
        let t = ChatTemplate(style: .llama2)
        #expect(t.prompt("Hi?") == "[INST] Hi? [/INST]")
        #expect(t.render(conversation) == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi? [/INST] Hello. </s>")
        let two = conversation + [ChatMessage(role: .user, content: "More?")]
        #expect(t.render(two, addGenerationPrompt: true).hasSuffix("Hello. </s><s>[INST] More? [/INST]"))
    }

    @Test func chatMLLayout() {
        let t = ChatTemplate(style: .chatml)
        #expect(t.prompt("Hi?") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n")
        #expect(t.render(conversation) ==
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n")
    }

    @Test func instructionLayout() {
        let t = ChatTemplate(style: .instruction, endOfTurn: "<|endoftext|>")
        #expect(t.prompt("Add 2 and 2.") == "### Instruction:\nAdd 2 and 2.\n\n### Response:\n")
        let (prompt, completion) = t.split([ChatMessage(role: .user, content: "Add 2 and 2."),
                                            ChatMessage(role: .assistant, content: "4")])
        #expect(prompt == "### Instruction:\nAdd 2 and 2.\n\n### Response:\n")
        #expect(completion == "4<|endoftext|>")
    }

    @Test func splitConcatenatesToTheRenderedConversation() {
        for style in ChatTemplate.Style.allCases {
            let t = ChatTemplate(style: style)
            let (prompt, completion) = t.split(conversation)
            #expect(prompt + completion == t.render(conversation))
            #expect(completion.hasPrefix(style == .llama2 ? " Hello." : "Hello."))
            #expect(!prompt.contains("Hello."))
        }
    }

    @Test func namesAndErrors() throws {
        #expect(try ChatTemplate.named("ChatML").style == .chatml)
        #expect(try ChatTemplate.named("llama2").style == .llama2)
        #expect(try ChatTemplate.named("auto").style == .instruction)
        #expect(try ChatTemplate.named("plain").style == .instruction, "recipes' name for the instruction template")
        #expect(throws: ChatTemplateError.unknown(name: "vicuna")) { try ChatTemplate.named("vicuna") }
        #expect(ChatTemplateError.unknown(name: "vicuna").description.contains("vicuna"))
    }
}

/// Detection and prompt masking with real tokenizer.json files (the tokenizer suite's fixtures).
@Suite struct ChatTemplateTokenizerTests {
    static func tokenizer(_ name: String) throws -> Tokenizer {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TokenizersTests/Fixtures/\(name).json")
        return try Tokenizer(contentsOf: url)
    }

    @Test func detectsTheTemplateFromSpecialTokens() throws {
        #expect(ChatTemplate.detect(tokenizer: try Self.tokenizer("qwen2")).style == .chatml)
        #expect(ChatTemplate.detect(tokenizer: try Self.tokenizer("llama2")).style == .llama2)
        let gpt2 = ChatTemplate.detect(tokenizer: try Self.tokenizer("gpt2"))
        #expect(gpt2.style == .instruction)
        #expect(gpt2.endOfTurn == "<|endoftext|>")
        #expect(try ChatTemplate.named("auto", tokenizer: Self.tokenizer("qwen2")).style == .chatml)
    }

    @Test(arguments: ["qwen2", "llama2", "gpt2"])
    func promptTokensPrefixTheConversation(name: String) throws {
        let tokenizer = try Self.tokenizer(name)
        let template = ChatTemplate.detect(tokenizer: tokenizer)
        let messages = [ChatMessage(role: .user, content: "Name a colour."), ChatMessage(role: .assistant, content: "Blue, mostly.")]
        let (ids, promptLength) = template.encode(messages, tokenizer: tokenizer)
        let (prompt, completion) = template.split(messages)
        #expect(ids == tokenizer.encode(prompt + completion))
        #expect(promptLength > 0 && promptLength < ids.count)
        #expect(Array(ids.prefix(promptLength)) == Array(tokenizer.encode(prompt).prefix(promptLength)))
        // The completion ends with the end-of-turn token, so a trained model learns to stop.
        if let end = tokenizer.id(of: template.endOfTurn) {
            #expect(ids.suffix(3).contains(end))
        }
        #expect(tokenizer.decode(Array(ids[promptLength...])).contains("Blue"))
    }
}
