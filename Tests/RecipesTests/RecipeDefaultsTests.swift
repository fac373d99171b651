import Foundation
@testable import Recipes
import Safety
import TestSupport
import Testing
@testable import Training

@Suite("Recipe defaults")
struct RecipeDefaultsTests {
    @Test("a minimal recipe gets every documented default")
    func minimalDefaults() throws {
        let files = try TestFiles()
        let url = try files.write("minimal.yaml", TestFiles.minimal)
        let recipe = try RecipeLoader().load(contentsOf: url)
        #expect(recipe.model.base?.url == files.root.appendingPathComponent("base.h5"))
        #expect(recipe.model.template == .auto)
        #expect(recipe.data.format == .auto)
        #expect(recipe.data.train.map(\.weight) == [1])
        #expect(recipe.adapters.kind == .lora && recipe.adapters.rank == 8 && recipe.adapters.alpha == 16)
        #expect(recipe.adapters.targets.map(\.pattern) == AdapterSection.defaultTargets)
        #expect(recipe.optimizer.name == .adamw && recipe.optimizer.lr == 1e-4)
        #expect(recipe.optimizer.betas == (0.9, 0.999))
        #expect(recipe.schedule.kind == .cosine && recipe.schedule.warmupSteps == 0)
        #expect(recipe.training.length == .epochs(1) && recipe.training.batchSize == 8 && recipe.training.seqLen == 512)
        #expect(recipe.eval.suites == [.safety, .utility])
        #expect(!recipe.safety.ssah.enabled && recipe.safety.ssah.freeze == .none && recipe.safety.ssah.route == .all)
        #expect(recipe.safety.ssah.sizes == UnitSizes(scu: 0.015, ucu: 0.10, ru: 0.15))
        // A recipe without a safety section runs each method with the method's own defaults.
        #expect(recipe.safety.ssah == SSAHSettings() && recipe.safety.signal == SignalSettings() && recipe.safety.gate == GateSettings())
        #expect(!recipe.safety.signal.enabled && recipe.safety.signal.lambda == 0.1 && recipe.safety.signal.clsToken == "[CLS]")
        #expect(recipe.safety.gate.enabled && recipe.safety.gate.onReject == .quarantine && recipe.safety.gate.variants == 6)
        #expect(recipe.output.name == "minimal" && recipe.output.report)
        #expect(recipe.output.dir.url == files.root.appendingPathComponent("runs/minimal"))
    }

    @Test("safety.signal.calibration needs the signal and an existing file")
    func guardCalibrationKeys() throws {
        let files = try TestFiles()
        let url = try files.write("calibrated.yaml", TestFiles.minimal)
        let off = try #require(throws: RecipeError.self) {
            try RecipeLoader().load(contentsOf: url, overrides: ["safety.signal.calibration=harmless.jsonl"])
        }
        #expect("\(off)".contains("safety.signal.calibration") && "\(off)".contains("safety.signal.enabled"))
        let on = try RecipeLoader().load(contentsOf: url, overrides: ["safety.signal.enabled=true", "safety.signal.calibration=harmless.jsonl"])
        #expect(on.safety.signal.overRefusalBudget == 0.05)
        #expect(on.missingFiles().contains { "\($0)".contains("safety.signal.calibration") })
        // Answer probes train a guard, so they need the signal too.
        let probes = try #require(throws: RecipeError.self) {
            try RecipeLoader().load(contentsOf: url, overrides: ["safety.signal.answer_probes=true"])
        }
        #expect("\(probes)".contains("safety.signal.answer_probes") && "\(probes)".contains("safety.signal.enabled"))
        let probed = try RecipeLoader().load(contentsOf: url, overrides: [
            "safety.signal.enabled=true", "safety.signal.answer_probes=true",
            "data.train=[train.jsonl, {path: compliance.jsonl, label: malicious, train_answers: false}]"])
        #expect(probed.safety.signal.answerProbes && probed.data.train.map(\.trainAnswers) == [true, false])
        // Written only when set, so recipes from before these keys keep their canonical text.
        #expect(probed.canonicalText.contains("\"answer_probes\": true") && probed.canonicalText.contains("\"train_answers\": false"))
        let plain = try RecipeLoader().load(contentsOf: url).canonicalText
        #expect(!plain.contains("answer_probes") && !plain.contains("train_answers"))
    }

    @Test("the documented defaults in the schema match what the loader fills in")
    func schemaDefaultsMatchCanonical() throws {
        let files = try TestFiles()
        let url = try files.write("minimal.yaml", TestFiles.minimal)
        let canonical = try RecipeLoader().load(contentsOf: url).canonicalValue
        var checked = 0
        // model.init keys only exist in from-scratch recipes; `initDefaults` covers them.
        for key in RecipeSchema.keys where !key.defaultValue.isEmpty && !key.defaultValue.hasPrefix("(")
            && !key.path.hasPrefix("model.init.") {
            let value = try #require(lookup(canonical, key.path), "\(key.path) missing from the canonical recipe")
            #expect(render(value) == key.defaultValue, "\(key.path)")
            checked += 1
        }
        #expect(checked > 40)
    }

    @Test("a from-scratch shape fills kv_heads, d_ff and context")
    func initDefaults() throws {
        let files = try TestFiles()
        let url = try files.write("scratch.yaml", """
            model:
              tokenizer: tokenizer.json
              init: {family: gpt2, layers: 2, d_model: 64, heads: 4}
            data: {train: [t.jsonl]}
            training: {steps: 10, seq_len: 128}
            """)
        let shape = try #require(try RecipeLoader().load(contentsOf: url).model.initShape)
        #expect(shape == ModelShape(family: .gpt2, layers: 2, dModel: 64, heads: 4, kvHeads: 4, dFF: 256, context: 1024))
    }

    @Test("docs/recipes.md carries the generated key table")
    func docsTableIsCurrent() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/recipes.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        #expect(text.contains(RecipeSchema.markdownTable()))
    }

    @Test("the shipped example recipes are valid and run on the shipped model")
    func exampleRecipes() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes")
        for name in ["lora-sft.yaml", "full-ft.yaml", "adapter-publish.yaml", "alignment-ru.yaml"] {
            let recipe = try RecipeLoader().load(contentsOf: folder.appendingPathComponent(name))
            #expect(recipe.missingFiles().isEmpty, "\(name)")
            #expect(recipe.model.base?.url.lastPathComponent == "smollm2-aligned.h5", "\(name)")
            _ = try RecipeData(recipe: recipe)
        }
        let publish = try RecipeLoader().load(contentsOf: folder.appendingPathComponent("adapter-publish.yaml"))
        #expect(publish.training.length == .steps(300))
        #expect(publish.adapters.rank == 16 && publish.optimizer.lr == 2e-4)
        #expect(publish.safety.ssah.route == .ru && publish.safety.gate.onReject == .purify)
        #expect(publish.files.count == 2)
    }

    /// The gate recipe shipped beside the aligned model, which `verify` and `purify` read for
    /// its children: the quickstart's gate (its variants are the ones kept beside the model),
    /// with clean data that exists and no label a gate would drop.
    @Test func theAlignedModelsGateRecipe() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let gate = try RecipeLoader().load(contentsOf: root.appendingPathComponent("checkpoints/smollm2-aligned.gate.yaml"))
        let quickstart = try RecipeLoader().load(contentsOf: root.appendingPathComponent("recipes/quickstart.yaml"))
        #expect(gate.safety.gate == quickstart.safety.gate && gate.model.base == quickstart.model.base)
        #expect(gate.safety.gate.variantsFrom == .parent && gate.safety.gate.kind == .lora)
        #expect(gate.model.base?.url.standardizedFileURL == root.appendingPathComponent("checkpoints/smollm2-aligned.h5").standardizedFileURL)
        #expect(try CleanData.load(recipe: gate).count == 150)
        // The direction stage runs on every child, adapters included, calibrated on the
        // shipped mix; the calibrations of the quickstart's regime and of the backdoor
        // experiment's children are kept beside the model.
        let g = gate.safety.gate
        let probes = try #require(g.directionProbes), data = try #require(g.directionData)
        let folder = try #require(g.directionCalibrationFile).url
        #expect(g.direction && FileManager.default.fileExists(atPath: probes.url.path))
        #expect(try CleanData.load(contentsOf: data.url, includingMalicious: true).count == 500 && g.directionSamples == 500)
        // Purification restores on the clean data and the mix, whose 300 refusals are labelled.
        let restoration = try CleanData.restoration(recipe: gate)
        #expect(restoration.count == 650 && restoration.filter(\.harmful).count == 300)
        // Calibrated at the child's own length: clean fine-tunes read higher the longer they train.
        #expect(g.directionMaxSteps == nil)
        #expect(folder.standardizedFileURL.path == root.appendingPathComponent("checkpoints/smollm2-aligned.gate").standardizedFileURL.path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).count { $0.hasPrefix("direction-calibration-") } >= 2)
    }

    private func lookup(_ value: CanonicalValue, _ path: String) -> CanonicalValue? {
        var current = value
        for part in path.split(separator: ".") {
            // `name[]` stands for the first item of the list `name`.
            let isItem = part.hasSuffix("[]")
            let name = isItem ? part.dropLast(2) : part
            guard case let .object(fields) = current, let next = fields.first(where: { $0.0 == name })?.1 else { return nil }
            current = next
            if isItem {
                guard case let .list(items) = current, let first = items.first else { return nil }
                current = first
            }
        }
        return current
    }

    private func render(_ value: CanonicalValue) -> String {
        switch value {
        case let .list(items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case let .string(s): return s
        default: return value.jsonText().trimmingCharacters(in: .newlines)
        }
    }
}
