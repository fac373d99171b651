import Checkpoints
import Engine
import Foundation
@testable import Recipes
import TestSupport
import Testing
import Tokenizers
@testable import Training

/// End-to-end runs of the trainer on a toy task small enough for a unit test.
@Suite(.serialized) struct TrainerTests {
    /// A question → answer task with one fixed answer per question.
    static let pairs = [
        ("What color is the sky?", "blue"), ("What color is grass?", "green"), ("What color is snow?", "white"),
        ("What color is coal?", "black"), ("What color is a lemon?", "yellow"), ("What color is blood?", "red"),
        ("What color is an orange?", "orange"), ("What color is a plum?", "purple"),
    ]

    /// A folder with the toy data, a tokenizer trained on it, and a recipe training a tiny
    /// Llama from scratch (`kind` full) or LoRA on a fresh base written as a checkpoint.
    static func makeRun(kind: String, steps: Int, extra: String = "") throws -> (TestFiles, URL) {
        let files = try TestFiles()
        var lines = ""
        for (q, a) in pairs {
            let object = try JSONSerialization.data(withJSONObject: ["prompt": q, "completion": " " + a], options: [.sortedKeys])
            lines += String(decoding: object, as: UTF8.self) + "\n"
        }
        try files.write("train.jsonl", lines)
        let corpus = pairs.map { "### Instruction:\n\($0.0)\n\n### Response:\n \($0.1)" }
        let tokenizer = try BPETrainer(vocabSize: 300, minFrequency: 1, specialTokens: ["<|endoftext|>"]).train(texts: corpus)
        try tokenizer.write(to: files.root.appendingPathComponent("tokenizer.json"))
        let model = """
            model:
              template: plain
              tokenizer: tokenizer.json
              init: {family: llama, layers: 2, d_model: 32, heads: 4, kv_heads: 2, d_ff: 64, context: 64}
            """
        let recipe = """
            \(model)
            data:
              train: [train.jsonl]
              eval: [train.jsonl]
            adapters:
              kind: \(kind)
              rank: 4
              alpha: 8
              targets: [q_proj, v_proj, down_proj]
            optimizer: {lr: 0.01, weight_decay: 0.01, grad_clip: 1.0}
            schedule: {kind: cosine, warmup_steps: 2}
            training: {steps: \(steps), batch_size: 4, grad_accum: 2, seq_len: 48, seed: 7, threads: 1}
            eval: {every: 0}
            safety: {gate: {enabled: false}}
            output: {dir: out, report: false}
            \(extra)
            """
        return (files, try files.write("recipe.yaml", recipe))
    }

    static func load(_ url: URL, _ overrides: [String] = []) throws -> Recipe {
        try RecipeLoader().load(contentsOf: url, overrides: overrides)
    }

    @Test func learnsTheToyTask() throws {
        let (files, url) = try Self.makeRun(kind: "full", steps: 60)
        var losses: [Double] = []
        let summary = try Trainer(recipe: Self.load(url)).run { event in
            if case let .step(r) = event { losses.append(r.loss) }
        }
        #expect(losses.count == 60)
        #expect(losses[0] > 2.0, "initial loss \(losses[0])")
        #expect(summary.finalLoss < 0.3, "final loss \(summary.finalLoss)")
        #expect(FileManager.default.fileExists(atPath: files.path("out/model.h5")))
        let log = try String(contentsOf: files.root.appendingPathComponent("out/metrics.jsonl"), encoding: .utf8)
        #expect(log.split(separator: "\n").count == 61)  // 60 steps and the final evaluation
        let checkpoint = try Checkpoint.read(from: files.root.appendingPathComponent("out/model.h5"))
        #expect(checkpoint.provenance?.recipeSHA256 == (try Self.load(url)).sha256)
        #expect(checkpoint.provenance?.dataSHA256.count == 1)
        #expect(checkpoint.provenance?.steps == 60)
    }

    @Test func aFilesWeightSetsHowOftenAnEpochShowsIt() throws {
        // Eight examples, batch 4, grad_accum 2: one step an epoch at weight 1, three at weight 3.
        let (files, url) = try Self.makeRun(kind: "full", steps: 1)
        let epochs = ["training.steps=null", "training.epochs=2"]
        let plain = try Trainer(recipe: Self.load(url, epochs)).plan
        let weighted = try Trainer(recipe: Self.load(url, epochs + ["data.train=[{path: \(files.path("train.jsonl")), weight: 3}]"])).plan
        #expect(plain.totalSteps == 2)
        #expect(weighted.totalSteps == 6)
    }

    @Test func sameRecipeSameWeights() throws {
        let (files, url) = try Self.makeRun(kind: "lora", steps: 5)
        try Trainer(recipe: Self.load(url)).run()
        let first = try Checkpoint.read(from: files.root.appendingPathComponent("out/model.h5"))
        try Trainer(recipe: Self.load(url, ["output.dir=\(files.path("again"))"])).run()
        let second = try Checkpoint.read(from: files.root.appendingPathComponent("again/model.h5"))
        let a = try #require(first.adapters), b = try #require(second.adapters)
        for (path, group) in a.groups {
            #expect(group.tensors["B"]?.scalars == b.groups[path]?.tensors["B"]?.scalars, "\(path)")
            #expect(group.tensors["B"]?.scalars.contains { $0 != 0 } == true, "\(path) did not train")
        }
    }

    /// A finished run lets go of what only further steps need (the optimizer's state, the
    /// gradients) before its final evaluation and save; an interrupted one keeps them.
    @Test func aFinishedRunLetsGoOfItsGradients() throws {
        let (files, url) = try Self.makeRun(kind: "full", steps: 3)
        let finished = try Trainer(recipe: Self.load(url))
        try finished.run()
        #expect(finished.model.namedParameters.allSatisfy { $0.1.grad == nil })
        var stop = Trainer.Parameters()
        stop.stopAfterStep = 2
        let interrupted = try Trainer(recipe: Self.load(url, ["output.dir=\(files.path("cut"))"]), parameters: stop)
        try interrupted.run()
        #expect(interrupted.model.namedParameters.contains { $0.1.grad != nil })
    }

    /// A fine-tune's checkpoint keeps its base's chat template, so `template: auto` renders
    /// its prompts later as the run rendered them.
    @Test func aFineTuneKeepsItsBasesChatTemplate() throws {
        let (files, url) = try Self.makeRun(kind: "full", steps: 3)
        try Trainer(recipe: Self.load(url)).run()
        var base = try Checkpoint.read(from: files.root.appendingPathComponent("out/model.h5"))
        #expect(base.chatTemplate == nil)
        base.chatTemplate = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
        try base.write(to: files.root.appendingPathComponent("base.h5"))
        let text = try String(contentsOf: url, encoding: .utf8)
            .replacingOccurrences(of: "  tokenizer: tokenizer.json\n  init: {family: llama, layers: 2, d_model: 32, heads: 4, kv_heads: 2, d_ff: 64, context: 64}",
                                  with: "  base: base.h5")
        #expect(text.contains("base: base.h5"))
        let child = try files.write("child.yaml", text.replacingOccurrences(of: "dir: out,", with: "dir: child,"))
        try Trainer(recipe: Self.load(child)).run()
        #expect(try Checkpoint.read(from: files.root.appendingPathComponent("child/model.h5")).chatTemplate == base.chatTemplate)
    }

    /// A packed base trains the adapters on the packed values, and the run's checkpoint
    /// keeps the float32 base it started from.
    @Test(arguments: ["float16", "q8_0"]) func aPackedBaseTrainsAndKeepsTheFloat32Base(precision: String) throws {
        let (files, url) = try Self.makeRun(kind: "lora", steps: 5)
        var plainLosses: [Double] = [], packedLosses: [Double] = []
        try Trainer(recipe: Self.load(url)).run { if case let .step(r) = $0 { plainLosses.append(r.loss) } }
        let recipe = try Self.load(url, ["output.dir=\(files.path("packed"))", "adapters.base_precision=\(precision)", "output.save_every=2"])
        try Trainer(recipe: recipe).run { if case let .step(r) = $0 { packedLosses.append(r.loss) } }
        let plain = try Checkpoint.read(from: files.root.appendingPathComponent("out/model.h5"))
        let packed = try Checkpoint.read(from: files.root.appendingPathComponent("packed/model.h5"))
        for (name, t) in plain.weights { #expect(t.scalars == packed.weights[name]?.scalars, "\(name)") }
        #expect(packedLosses.count == 5 && packedLosses != plainLosses)
        #expect(abs(packedLosses[0] - plainLosses[0]) < 0.01)
        for (path, group) in packed.adapters?.groups ?? [:] {
            #expect(group.tensors["B"]?.scalars.contains { $0 != 0 } == true, "\(path) did not train")
        }
    }

    @Test(arguments: ["full", "lora"]) func interruptedAndResumedEqualsUninterrupted(kind: String) throws {
        let (files, url) = try Self.makeRun(kind: kind, steps: 8, extra: "")
        try Trainer(recipe: Self.load(url, ["output.dir=\(files.path("straight"))"])).run()
        var stop = Trainer.Parameters()
        stop.stopAfterStep = 3
        let resumedRecipe = try Self.load(url, ["output.dir=\(files.path("resumed"))"])
        try Trainer(recipe: resumedRecipe, parameters: stop).run()
        #expect(!FileManager.default.fileExists(atPath: files.path("resumed/model.h5")))
        var resume = Trainer.Parameters()
        resume.resume = true
        var startedAt = -1
        try Trainer(recipe: resumedRecipe, parameters: resume).run { if case let .started(plan) = $0 { startedAt = plan.startStep } }
        #expect(startedAt == 3)
        let a = try Checkpoint.read(from: files.root.appendingPathComponent("straight/model.h5"))
        let b = try Checkpoint.read(from: files.root.appendingPathComponent("resumed/model.h5"))
        for (name, t) in a.weights { #expect(t.scalars == b.weights[name]?.scalars, "\(name)") }
        for (path, group) in a.adapters?.groups ?? [:] {
            #expect(group.tensors["A"]?.scalars == b.adapters?.groups[path]?.tensors["A"]?.scalars, "\(path)")
            #expect(group.tensors["B"]?.scalars == b.adapters?.groups[path]?.tensors["B"]?.scalars, "\(path)")
        }
        let log = try String(contentsOf: files.root.appendingPathComponent("resumed/metrics.jsonl"), encoding: .utf8)
        #expect(log.split(separator: "\n").filter { !$0.contains("eval") }.count == 8)
    }

    /// A full fine-tune of a checkpoint names as its parent the weights it started from,
    /// not the ones it trained (the bundle's digest is taken before training changes them).
    @Test func aFineTuneNamesTheWeightsItStartedFrom() throws {
        let (files, url) = try Self.makeRun(kind: "full", steps: 4)
        try Trainer(recipe: Self.load(url, ["output.dir=\(files.path("first"))"])).run()
        let parent = try Checkpoint.read(from: files.root.appendingPathComponent("first/model.h5"))
        let recipe = try String(contentsOf: url, encoding: .utf8)
            .replacingOccurrences(of: "  tokenizer: tokenizer.json\n  init: {family: llama, layers: 2, d_model: 32, heads: 4, kv_heads: 2, d_ff: 64, context: 64}",
                                  with: "  base: first/model.h5")
        let second = try files.write("second.yaml", recipe)
        try Trainer(recipe: Self.load(second, ["output.dir=\(files.path("second"))"])).run()
        let child = try Checkpoint.read(from: files.root.appendingPathComponent("second/model.h5"))
        #expect(child.provenance?.parentSHA256 == parent.weightsSHA256)
        #expect(child.weightsSHA256 != parent.weightsSHA256)
    }

    /// A base checkpoint paired with a tokenizer that has more tokens than the model has
    /// embeddings is refused when the run starts, naming both files, instead of stopping
    /// the process inside the first forward.
    @Test func tokenizerLargerThanTheModelIsRefused() throws {
        let (files, url) = try Self.makeRun(kind: "full", steps: 3)
        try Trainer(recipe: Self.load(url)).run()
        let json = try BPETrainer(vocabSize: 400, minFrequency: 1, specialTokens: ["<|endoftext|>"])
            .train(texts: Self.pairs.map { "### Instruction:\n\($0.0)\n\n### Response:\n \($0.1) and more words here" })
        try json.write(to: files.root.appendingPathComponent("bigger.json"))
        let bigger = try Tokenizer(data: json, source: "bigger.json")
        let embeddings = try Checkpoint.read(from: files.root.appendingPathComponent("out/model.h5")).config.vocabSize
        try #require(bigger.vocabSize > embeddings)
        let recipe = try files.write("lora.yaml", """
            model: {base: out/model.h5, tokenizer: bigger.json, template: plain}
            data: {train: [train.jsonl]}
            adapters: {kind: lora, rank: 4, alpha: 8, targets: [q_proj]}
            training: {steps: 1, batch_size: 2, seq_len: 48, threads: 1}
            safety: {gate: {enabled: false}}
            output: {dir: lora, report: false}
            """)
        #expect(throws: TrainerError.vocabularyMismatch(tokenizer: files.path("bigger.json"), tokens: bigger.vocabSize,
                                                        model: files.path("out/model.h5"), embeddings: embeddings)) {
            try Trainer(recipe: Self.load(recipe)).run()
        }
    }
}
