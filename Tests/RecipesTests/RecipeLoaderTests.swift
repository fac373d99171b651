import Checkpoints
import Foundation
@testable import Recipes
import TestSupport
import Testing
@testable import Training

@Suite("Recipe loading: extends, --set, canonical text")
struct RecipeLoaderTests {
    @Test("extends chains through folders, deep-merges mappings, child wins, null removes")
    func extendsChain() throws {
        let files = try TestFiles()
        try files.write("shared/base.yaml", """
            model: {base: model.h5, template: chatml}
            data:
              train: [a.jsonl]
            optimizer: {lr: 0.001, weight_decay: 0.1}
            training: {epochs: 2, batch_size: 2}
            """)
        try files.write("shared/middle.yaml", """
            extends: base.yaml
            optimizer: {lr: 0.002}
            adapters: {rank: 4}
            """)
        let child = try files.write("child.yaml", """
            extends: shared/middle.yaml
            optimizer: {weight_decay: 0.2}
            training: {epochs: null, steps: 50}
            """)
        let recipe = try RecipeLoader().load(contentsOf: child)
        #expect(recipe.files.map(\.lastPathComponent) == ["child.yaml", "middle.yaml", "base.yaml"])
        #expect(recipe.optimizer.lr == 0.002)
        #expect(recipe.optimizer.weightDecay == 0.2)
        #expect(recipe.adapters.rank == 4)
        #expect(recipe.model.template == .chatml)
        #expect(recipe.training.length == .steps(50) && recipe.training.batchSize == 2)
        // Paths resolve against the file that wrote them.
        #expect(recipe.model.base?.url == files.root.appendingPathComponent("shared/model.h5"))
        #expect(recipe.data.train[0].path.url == files.root.appendingPathComponent("shared/a.jsonl"))
        #expect(recipe.canonicalText.contains("\"base\": \"shared/model.h5\""))
    }

    @Test("an extends cycle is reported with the whole chain")
    func extendsCycle() throws {
        let files = try TestFiles()
        try files.write("a.yaml", "extends: b.yaml\n")
        try files.write("b.yaml", "extends: c.yaml\n")
        try files.write("c.yaml", "extends: a.yaml\n")
        let error = try #require(throws: RecipeError.self) {
            try RecipeLoader().load(contentsOf: files.root.appendingPathComponent("a.yaml"))
        }
        #expect(error == .extendsCycle(chain: ["a", "b", "c", "a"].map { files.path("\($0).yaml") }))
        #expect(error.description.contains("a.yaml -> \(files.path("b.yaml")) -> \(files.path("c.yaml")) -> \(files.path("a.yaml"))"))
    }

    @Test("a missing parent names the extends line")
    func missingParent() throws {
        let files = try TestFiles()
        let url = try files.write("child.yaml", "# comment\nextends: nowhere.yaml\n")
        #expect(throws: RecipeError.missingFile(location(files.path("child.yaml"), 2, 10, files.root),
                                                keyPath: "extends", path: "nowhere.yaml")) {
            try RecipeLoader().load(contentsOf: url)
        }
    }

    @Test("--set values are typed by the schema")
    func overridesTyped() throws {
        let files = try TestFiles()
        let url = try files.write("r.yaml", TestFiles.minimal)
        let recipe = try RecipeLoader().load(contentsOf: url, overrides: [
            "training.batch_size=4", "safety.signal.enabled=true", "adapters.targets=[q_proj, 'mlp.*']",
            "optimizer.betas=[0.8, 0.9]", "safety.ssah.sizes.scu=0.02", "training.epochs=null", "training.steps=20",
            "data.train=[x.jsonl, {path: y.jsonl, label: malicious}]", "output.name=run-1",
        ])
        #expect(recipe.training.batchSize == 4)
        #expect(recipe.safety.signal.enabled)
        #expect(recipe.adapters.targets.map(\.pattern) == ["q_proj", "mlp.*"])
        #expect(recipe.optimizer.betas == (0.8, 0.9))
        #expect(recipe.safety.ssah.sizes.scu == 0.02)
        #expect(recipe.training.length == .steps(20))
        #expect(recipe.data.train.map(\.label) == [nil, .malicious])
        #expect(recipe.output.name == "run-1")
        #expect(recipe.overrides.count == 9)
    }

    @Test("a badly typed --set names the argument and key")
    func overrideWrongType() throws {
        let files = try TestFiles()
        let url = try files.write("r.yaml", TestFiles.minimal)
        let error = try #require(throws: RecipeError.self) {
            try RecipeLoader().load(contentsOf: url, overrides: ["training.batch_size=four"])
        }
        #expect(error.description == "--set training.batch_size=four: training.batch_size: expected an integer, got 'four'")
    }

    @Test("a --set path that is not a key is refused with a suggestion")
    func overrideBadPath() throws {
        #expect(throws: RecipeError.badOverride(argument: "training.batchsize=4",
                                                reason: "unknown key 'training.batchsize'; did you mean 'training.batch_size'?")) {
            try RecipeOverride("training.batchsize=4")
        }
        #expect(throws: RecipeError.badOverride(argument: "training", reason: "expected key.path=value")) {
            try RecipeOverride("training")
        }
        #expect(throws: RecipeError.badOverride(argument: "extends=x.yaml", reason: "extends cannot be overridden")) {
            try RecipeOverride("extends=x.yaml")
        }
        let files = try TestFiles()
        let url = try files.write("r.yaml", TestFiles.minimal + "safety: [1]\n")
        #expect(throws: RecipeError.badOverride(argument: "safety.gate.tau=0.1", reason: "'safety' in the recipe is not a mapping")) {
            try RecipeLoader().load(contentsOf: url, overrides: ["safety.gate.tau=0.1"])
        }
    }

    @Test("the same recipe always gives the same canonical text and hash; a change gives another")
    func canonicalStable() throws {
        let files = try TestFiles()
        let a = try files.write("a/run.yaml", TestFiles.minimal + "optimizer: {lr: 1.0e-4}\n")
        // Same settings written differently (order, number spelling, defaults spelt out), in another folder.
        let b = try files.write("b/run.yaml", """
            training: {batch_size: 8, epochs: 1}
            optimizer: {lr: 0.0001, betas: [0.9, 0.999]}
            data:
              train:
                - {path: train.jsonl, weight: 1}
            model: {template: auto, base: base.h5}

            """)
        let first = try RecipeLoader().load(contentsOf: a)
        let again = try RecipeLoader().load(contentsOf: a)
        let other = try RecipeLoader().load(contentsOf: b)
        #expect(first.canonicalText == again.canonicalText)
        #expect(first.sha256 == other.sha256)
        #expect(first.sha256.count == 64 && first.sha256.allSatisfy(\.isHexDigit))
        let changed = try RecipeLoader().load(contentsOf: a, overrides: ["training.seed=1"])
        #expect(changed.sha256 != first.sha256)
        #expect(changed.canonicalText.contains("\"seed\": 1"))
        // A packed base is written only when asked for: the text of every recipe without it stays.
        #expect(!first.canonicalText.contains("base_precision"))
        let packed = try RecipeLoader().load(contentsOf: a, overrides: ["adapters.base_precision=q8_0"])
        #expect(packed.canonicalText.contains("\"base_precision\": \"q8_0\""))
        #expect(packed.adapters.basePrecision.packed == .q8_0 && first.adapters.basePrecision.packed == nil)
        let spelt = try RecipeLoader().load(contentsOf: a, overrides: ["adapters.base_precision=float32"])
        #expect(spelt.sha256 == first.sha256)
    }

    @Test("a pinned model's name as model.base is its cached file, and stays a name in the canonical text")
    func pinnedBase() throws {
        let files = try TestFiles()
        let url = try files.write("a/run.yaml", """
            model: {base: smollm2}
            data: {train: [train.jsonl]}
            training: {epochs: 1, group_by_length: true}
            """)
        let recipe = try RecipeLoader().load(contentsOf: url)
        #expect(recipe.model.base?.pinned?.name == "smollm2")
        #expect(recipe.model.base?.url == BaseModel.smolLM2.cachedURL())
        #expect(recipe.canonicalText.contains("\"base\": \"smollm2\""))
        #expect(recipe.training.groupByLength && recipe.canonicalText.contains("\"group_by_length\": true"))
        // Off, the key is not written, so recipes that never set it keep their hash.
        let plain = try RecipeLoader().load(contentsOf: url, overrides: ["training.group_by_length=false"])
        #expect(!plain.canonicalText.contains("group_by_length"))
    }

    private func location(_ file: String, _ line: Int, _ column: Int, _ base: URL) -> RecipeLocation {
        RecipeLocation(file: file, line: line, column: column, baseDirectory: base)
    }
}
