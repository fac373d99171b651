import Testing
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
        #expect(throws: ChatTemplateError.unknown(name: "vicuna")) { try ChatTemplate.named("vicuna") }
        #expect(ChatTemplateError.unknown(name: "vicuna").description.contains("vicuna"))
    }
}
