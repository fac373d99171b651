import Foundation
@testable import Recipes
import TestSupport
import Testing
@testable import Training

@Suite("Recipe errors name file, line and key")
struct RecipeErrorTests {
    /// Loads `body` from a fresh file and returns the error's one-line description.
    private func failure(_ body: String, overrides: [String] = [], check: Bool = false) throws -> (String, TestFiles) {
        let files = try TestFiles()
        let url = try files.write("r.yaml", body)
        let error = try #require(throws: RecipeError.self) {
            let recipe = try RecipeLoader().load(contentsOf: url, overrides: overrides)
            if check { try recipe.checkFiles() }
        }
        #expect(!error.description.contains("\n"))
        return (error.description, files)
    }

    @Test("unknown key with did-you-mean")
    func unknownKey() throws {
        let (message, files) = try failure(TestFiles.minimal.replacingOccurrences(of: "  epochs: 1", with: "  epochs: 1\n  batchsize: 4"))
        #expect(message == "\(files.path("r.yaml")):7:3: unknown key 'training.batchsize'; did you mean 'training.batch_size'?")
    }

    @Test("unknown section with did-you-mean, and none when nothing is close")
    func unknownSection() throws {
        let (near, files) = try failure(TestFiles.minimal + "optimiser:\n  lr: 0.1\n")
        #expect(near == "\(files.path("r.yaml")):7:1: unknown key 'optimiser'; did you mean 'optimizer'?")
        let (far, files2) = try failure(TestFiles.minimal + "zzzzzzzz: 1\n")
        #expect(far == "\(files2.path("r.yaml")):7:1: unknown key 'zzzzzzzz'")
    }

    @Test("wrong type")
    func wrongType() throws {
        let (message, files) = try failure(TestFiles.minimal + "  batch_size: four\n")
        #expect(message == "\(files.path("r.yaml")):7:15: training.batch_size: expected an integer, got 'four'")
        let (list, files2) = try failure(TestFiles.minimal.replacingOccurrences(of: "[train.jsonl]", with: "train.jsonl"))
        #expect(list == "\(files2.path("r.yaml")):4:10: data.train: expected a list, got 'train.jsonl'")
        let (bool, _) = try failure(TestFiles.minimal + "  packing: yes\n")
        #expect(bool.hasSuffix("training.packing: expected true or false, got 'yes'"))
    }

    @Test("out of range")
    func outOfRange() throws {
        let (message, files) = try failure(TestFiles.minimal + "adapters:\n  rank: 0\n")
        #expect(message == "\(files.path("r.yaml")):8:9: adapters.rank: 0 is out of range (1 <= x <= 4096)")
        let (fraction, _) = try failure(TestFiles.minimal + "safety:\n  gate: {tau: 1.5}\n")
        #expect(fraction.hasSuffix("safety.gate.tau: 1.5 is out of range (0 < x < 1)"))
        let (nan, _) = try failure(TestFiles.minimal + "optimizer: {lr: .nan}\n")
        #expect(nan.hasSuffix("optimizer.lr: expected a number, got '.nan'"))
        let (freeze, _) = try failure(TestFiles.minimal + "safety:\n  ssah: {enabled: true, freeze: 'scu+cu_top:6', safety_data: s.jsonl, utility_data: u.jsonl}\n")
        #expect(freeze.hasSuffix("safety.ssah.freeze: '6' in 'scu+cu_top:6' is out of range (a fraction, 0 < x < 1)"))
    }

    @Test("invalid choice with suggestion")
    func invalidChoice() throws {
        let (message, files) = try failure(TestFiles.minimal + "schedule: {kind: cosin}\n")
        #expect(message == "\(files.path("r.yaml")):7:18: schedule.kind: 'cosin' is not one of constant, linear, cosine; did you mean 'cosine'?")
    }

    @Test("missing required keys and steps xor epochs")
    func missingAndConflicts() throws {
        let (noBase, _) = try failure("data: {train: [t.jsonl]}\ntraining: {epochs: 1}\n")
        #expect(noBase.hasSuffix("missing required key 'model.base'"))
        let (both, files) = try failure(TestFiles.minimal + "  steps: 10\n")
        #expect(both == "\(files.path("r.yaml")):7:10: training.steps: give exactly one of training.epochs and training.steps, not both (set the inherited one to null)")
        let (neither, _) = try failure(TestFiles.minimal.replacingOccurrences(of: "  epochs: 1\n", with: "  batch_size: 2\n"))
        #expect(neither.hasSuffix("training: give exactly one of training.epochs and training.steps"))
    }

    @Test("cross-field rules")
    func crossField() throws {
        let (freeze, files) = try failure(TestFiles.minimal + "safety:\n  ssah:\n    freeze: scu\n")
        #expect(freeze == "\(files.path("r.yaml")):9:13: safety.ssah.freeze: 'scu' needs safety.ssah.enabled: true")
        let (data, _) = try failure(TestFiles.minimal.replacingOccurrences(of: "base.h5", with: "hf-model")
                                    + "safety:\n  ssah: {enabled: true, safety_data: s.jsonl}\n")
        #expect(data.contains("safety.ssah.utility_data: needed to score units"))
        let (warmup, _) = try failure(TestFiles.minimal.replacingOccurrences(of: "epochs: 1", with: "steps: 10")
                                      + "schedule: {warmup_steps: 10}\n")
        #expect(warmup.hasSuffix("schedule.warmup_steps: 10 warmup steps leave none of the 10 training steps"))
        let (shape, _) = try failure("""
            model:
              tokenizer: tok.json
              init: {family: llama, layers: 2, d_model: 64, heads: 3}
            data: {train: [t.jsonl]}
            training: {epochs: 1}

            """)
        #expect(shape.hasSuffix("model.init.heads: d_model 64 is not divisible by heads 3"))
        let (route, _) = try failure(TestFiles.minimal + "safety:\n  ssah: {enabled: true, freeze: scu+cu, route: ru+cu}\n")
        #expect(route.contains("safety.ssah.route: 'ru+cu' routes updates into complex units"))
        let (packed, files3) = try failure(TestFiles.minimal + "adapters:\n  kind: full\n  base_precision: q8_0\n")
        #expect(packed == "\(files3.path("r.yaml")):9:19: adapters.base_precision: packs a frozen base; full fine-tuning trains it (use kind: lora, or drop it)")
    }

    @Test("bad adapter target pattern")
    func badTarget() throws {
        let (message, files) = try failure(TestFiles.minimal + "adapters:\n  targets:\n    - q_proj\n    - v_prj\n")
        #expect(message.hasPrefix("\(files.path("r.yaml")):10:7: adapters.targets[1]: 'v_prj' is not one of"))
        #expect(message.hasSuffix("did you mean 'v_proj'?"))
    }

    @Test("missing data and model files are found by check, with the line that names them")
    func missingFiles() throws {
        let (message, files) = try failure(TestFiles.minimal, check: true)
        #expect(message == "\(files.path("r.yaml")):2:9: model.base: no such file 'base.h5'")
        let more = try TestFiles()
        try more.write("base.h5", "")
        let url = try more.write("r.yaml", TestFiles.minimal)
        let recipe = try RecipeLoader().load(contentsOf: url)
        #expect(recipe.missingFiles() == [.missingFile(RecipeLocation(file: more.path("r.yaml"), line: 4, column: 11,
                                                                      baseDirectory: more.root),
                                                       keyPath: "data.train[0]", path: "train.jsonl")])
    }

    @Test("malformed YAML and unreadable files")
    func syntaxAndUnreadable() throws {
        let (syntax, files) = try failure("model:\n  base: [unclosed\n")
        #expect(syntax.hasPrefix("\(files.path("r.yaml")):"))
        #expect(syntax.contains("invalid YAML"))
        let (duplicate, _) = try failure(TestFiles.minimal + "training: {steps: 3}\n")
        #expect(duplicate.contains("invalid YAML") && duplicate.contains("training"))
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-recipe-\(UUID()).yaml")
        #expect(throws: RecipeError.unreadable(file: missing.standardizedFileURL.path, reason: "no such file")) {
            try RecipeLoader().load(contentsOf: missing)
        }
        let big = try TestFiles()
        let url = try big.write("big.yaml", TestFiles.minimal + "description: \(String(repeating: "x", count: 2000))\n")
        #expect(throws: RecipeError.unreadable(file: big.path("big.yaml"), reason: "larger than 1000 bytes")) {
            try RecipeLoader(maxFileBytes: 1000).load(contentsOf: url)
        }
    }

    @Test("values quoted from the file stay on one line: block scalars, escapes, line separators (found by fuzzing)")
    func quotedValuesStayOnOneLine() throws {
        let (block, _) = try failure("|\n  first line\n  second line\n")
        #expect(block.contains("expected a mapping of sections, got 'first line\\nsecond line\\n'"))
        let (target, _) = try failure(TestFiles.minimal + "adapters:\n  targets: [\"c_at\\ntn\\u2028x\\u0085\"]\n")
        let oneLine = !target.contains(where: \.isNewline)
        #expect(oneLine, "\(target.debugDescription)")
        #expect(target.contains("c_at\\ntn\\u{2028}x\\u{85}"))
    }

    @Test("a device as a recipe or parent is refused before reading, not read forever")
    func deviceIsNotRead() throws {
        #expect(throws: RecipeError.unreadable(file: "/dev/zero", reason: "not a regular file")) {
            try RecipeLoader().load(contentsOf: URL(fileURLWithPath: "/dev/zero"))
        }
        let files = try TestFiles()
        let url = try files.write("child.yaml", "extends: /dev/zero\n" + TestFiles.minimal)
        #expect(throws: RecipeError.unreadable(file: "/dev/zero", reason: "not a regular file")) {
            try RecipeLoader().load(contentsOf: url)
        }
    }
}
