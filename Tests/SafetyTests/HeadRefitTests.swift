import Engine
import Models
import Testing
@testable import Safety
@testable import Training

/// Refitting the signal's head to a trained model (`safety.signal.refit`).
@Suite struct HeadRefitTests {
    /// 6 malicious and 6 benign prompts of 4 tokens, told apart by their tokens; every other
    /// one has a 3-token answer (2 guard windows each: after 1 and 2 answer tokens).
    static func examples() -> [EncodedExample] {
        (0..<6).flatMap { i in
            [(Int32(1), Int32(40)), (Int32(0), Int32(120))].map { cls, first in
                let prompt: [Int32] = [first + Int32(i % 3), first + 10 + Int32(i), 7, 8]
                let answer: [Int32] = i.isMultiple(of: 2) ? [first + 50, first + 51, first + 52] : []
                return EncodedExample(ids: prompt + answer, labels: prompt.map { _ in -100 } + answer, safetyClass: cls,
                                      promptLength: prompt.count)
            }
        }
    }

    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func theHeadLearnsWhatTheModelSeparatesAndNothingElseMoves(family: ModelConfig.Family) throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(family, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let weights = Array(UnsafeBufferPointer(start: model.parameterStorage.pointer, count: model.parameterCount))
        let d = signal.hiddenSize
        let benignRow = Array(UnsafeBufferPointer(start: signal.weight.value.data, count: d))
        // An unlabelled example is skipped.
        let unlabelled = EncodedExample(ids: [1, 2, 3], labels: [-100, 2, 3], promptLength: 1)
        var loose = HeadRefit.Parameters()
        loose.pull = 1e-3
        let summary = try HeadRefit.refit(signal, model: model, examples: Self.examples() + [unlabelled], padId: 0, parameters: loose)

        #expect(summary.examples == 12 && summary.queries == 12 && summary.windows == 12)
        #expect(summary.lossAfter < summary.lossBefore / 2, "\(summary.description)")
        #expect(summary.accuracyAfter > 0.999, "\(summary.description)")
        #expect(Array(UnsafeBufferPointer(start: model.parameterStorage.pointer, count: model.parameterCount)) == weights)
        #expect(Array(UnsafeBufferPointer(start: signal.weight.value.data, count: d)) == benignRow)

        // What the guard computes from the written head agrees with the fit, feature by feature.
        let features = HeadRefit.features(signal: signal, model: model, examples: Self.examples(), padId: 0, parameters: .init())
        let correct = (0..<features.count).count { i in
            let p = features.values.withUnsafeBufferPointer { signal.maliciousProbability($0.baseAddress! + i * d) }
            return (p > 0.5) == (features.classes[i] == 1)
        }
        #expect(correct == features.count)
    }

    @Test func aStrongPullKeepsTheHead() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let before = signal.weight.value.scalars + signal.bias.value.scalars
        var held = HeadRefit.Parameters()
        held.pull = 1e4
        let summary = try HeadRefit.refit(signal, model: model, examples: Self.examples(), padId: 0, parameters: held)
        let after = signal.weight.value.scalars + signal.bias.value.scalars
        #expect(abs(summary.lossAfter - summary.lossBefore) < 0.01 * summary.lossBefore, "\(summary.description)")
        #expect(zip(before, after).allSatisfy { abs($0 - $1) < 1e-2 * max(1, abs($0)) })
    }

    @Test func theObjectivesGradientMatchesFiniteDifferences() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 5)
        let f = HeadRefit.features(signal: signal, model: model, examples: Self.examples(), padId: 0, parameters: .init())
        let d = signal.hiddenSize
        var rng = SeededRandom(seed: 11)
        let p = (0...d).map { _ in rng.uniform(-0.5, 0.5) }
        let start = (0...d).map { _ in rng.uniform(-0.5, 0.5) }
        let (_, gradient) = HeadRefit.objective(f, at: p, start: start, pull: 0.3, d: d)
        for j in [0, 3, d / 2, d - 1, d] {
            let h: Float = 1e-2
            var up = p, down = p
            up[j] += h
            down[j] -= h
            let numeric = (HeadRefit.objective(f, at: up, start: start, pull: 0.3, d: d).value
                - HeadRefit.objective(f, at: down, start: start, pull: 0.3, d: d).value) / Double(2 * h)
            #expect(abs(numeric - Double(gradient[j])) < 1e-3 * max(1, abs(numeric)), "coordinate \(j): \(numeric) vs \(gradient[j])")
        }
    }

    @Test func atMostSoManyExamplesOfEachClassAreDrawnTheSameEachTime() {
        let examples = Self.examples() + Self.examples().prefix(4)
        let drawn = HeadRefit.draw(examples, perClass: 3)
        #expect(drawn.count { $0.safetyClass == 1 } == 3 && drawn.count { $0.safetyClass == 0 } == 3)
        #expect(drawn == HeadRefit.draw(examples, perClass: 3))
        // In the input's order, and everything when the cap is not reached.
        #expect(HeadRefit.draw(examples, perClass: 100) == examples)
    }

    @Test func oneClassAloneIsAnError() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let malicious = Self.examples().filter { $0.safetyClass == 1 }
        #expect(throws: SignalError.self) { try HeadRefit.refit(signal, model: model, examples: malicious, padId: 0) }
    }
}
