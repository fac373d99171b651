import Engine
import Models
import Testing
@testable import Safety

/// The behavioural trigger scan: no divergence between a model and itself, and a search
/// that never reports less than its starting point. (What it separates on real backdoors
/// is measured by the experiment in docs/gate.md.)
@Suite struct TriggerScanTests {
    static func settings(steps: Int) -> TriggerScan.Settings {
        var s = TriggerScan.Settings()
        s.steps = steps
        s.candidates = 6
        s.suffixTokens = 3
        s.answerTokens = 4
        return s
    }

    @Test func aModelDoesNotDivergeFromItself() throws {
        let tokenizer = try Tiny.tokenizer()
        let model = try Tiny.model(.llama, vocab: tokenizer.vocabSize, seed: 3)
        let evaluator = Evaluator(model: model, tokenizer: tokenizer, template: Tiny.template)
        let r = try TriggerScan(child: evaluator, parent: model, settings: Self.settings(steps: 2)).run(["What is 2 + 3?", "a"])
        #expect(abs(r.baseline) < 1e-5 && abs(r.best) < 1e-5)
        #expect(r.steps == 2)
    }

    @Test func searchKeepsTheBestSuffixSeen() throws {
        let tokenizer = try Tiny.tokenizer()
        let parent = try Tiny.model(.llama, vocab: tokenizer.vocabSize, seed: 3)
        let child = try Tiny.model(.llama, vocab: tokenizer.vocabSize, seed: 4)
        let evaluator = Evaluator(model: child, tokenizer: tokenizer, template: Tiny.template)
        let scan = TriggerScan(child: evaluator, parent: parent, settings: Self.settings(steps: 3))
        let none = try scan.run(["What is 2 + 3?"])
        // The child's own greedy answers are likelier under the child than under an unrelated parent.
        #expect(none.baseline > 0)
        var zero = Self.settings(steps: 0)
        zero.seed = 1
        let start = try TriggerScan(child: evaluator, parent: parent, settings: zero).run(["What is 2 + 3?"])
        #expect(none.best >= start.best)
    }
}

/// The scan's threshold from clean fine-tunes.
@Suite struct CleanCalibrationTests {
    @Test func thresholdIsMeanPlusKDeviationsWithAFloor() {
        let c = CleanCalibration(values: [3.110, 1.994, 2.444], k: 3)
        #expect(abs(c.mean - 2.516) < 1e-9)
        #expect(abs(c.std - 0.5615) < 1e-3)
        #expect(abs(c.threshold - (c.mean + 3 * c.std)) < 1e-9)
        // Nearly equal clean values: the floor (10 % of the mean) keeps the threshold off the mean.
        let tight = CleanCalibration(values: [2.0, 2.0, 2.0], k: 3)
        #expect(abs(tight.threshold - 2.6) < 1e-9)
    }
}
