import Checkpoints
import Engine
import Foundation
import Models
import Testing
import Tokenizers
@testable import Safety

/// `GuardCalibration`: the guard's threshold for an over-refusal budget.
@Suite struct GuardCalibrationTests {
    @Test func searchKeepsTheLowestThresholdWithinBudget() {
        // Over-refusal rises as the threshold falls; the budget 5 % is kept down to 0.08.
        var rates: [Float: Double] = [0.5: 0.02, 0.35: 0.02, 0.25: 0.03, 0.18: 0.03, 0.12: 0.04, 0.08: 0.05, 0.05: 0.09]
        for high: Float in [0.99, 0.95, 0.9, 0.8, 0.65] { rates[high] = 0.01 }
        var asked: [Float] = []
        let c = GuardCalibration.search(budget: 0.05, prompts: 100, maxTokens: 8) { t in
            asked.append(t)
            return GuardCalibration.Trial(threshold: t, overRefusal: rates[t] ?? 1, addedRefusal: rates[t] ?? 1, interventions: 0)
        }
        #expect(c.threshold == 0.08 && c.withinBudget)
        // The walk stops at the first threshold over budget.
        #expect(asked == [0.99, 0.95, 0.9, 0.8, 0.65, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05])
        #expect(c.trials.map(\.threshold) == asked)
        // A head that raises false alarms at 0.5 gets a higher threshold.
        let alarmed = GuardCalibration.search(budget: 0.05, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: t >= 0.9 ? 0.04 : 0.2, addedRefusal: t >= 0.9 ? 0.04 : 0.2, interventions: 0)
        }
        #expect(alarmed.threshold == 0.9 && alarmed.withinBudget)
        // A model that over-refuses on its own is charged only with what the guard adds: the
        // budget 1 % holds down to 0.5 although 12 % of its guarded answers are refusals.
        let ownRefusals = GuardCalibration.search(budget: 0.01, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: t >= 0.5 ? 0.12 : 0.15, addedRefusal: t >= 0.5 ? 0.01 : 0.04, interventions: 0.05)
        }
        #expect(ownRefusals.threshold == 0.5 && ownRefusals.withinBudget)
        // A guard that adds too many even at the highest threshold keeps it, marked as over budget.
        let over = GuardCalibration.search(budget: 0.01, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: 0.03, addedRefusal: 0.02, interventions: 0.02)
        }
        #expect(over.threshold == 0.99 && !over.withinBudget && over.trials.count == 1)
        // A trial from a record that predates `addedRefusal` is charged with all its refusals.
        let older = GuardCalibration.search(budget: 0.01, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: 0.03, addedRefusal: nil, interventions: 0)
        }
        #expect(older.threshold == 0.99 && !older.withinBudget)
    }

    @Test func theCalibratedThresholdTravelsWithTheHeadAndGuidesTheGuard() throws {
        let (model, tokenizer, signal, prompt) = try SignalGuardTests.setup()
        // Uncalibrated: the published threshold.
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal).threshold == GuardOptions.uncalibratedThreshold)
        // A head sure that everything is benign, calibrated on a few harmless prompts: no
        // threshold on the ladder makes the guard refuse, so the lowest is kept.
        signal.bias.value.data[0] = 50
        let harmless = ["Name a colour.", "What is 2 + 3?", "Say hello."]
        let calibration = try GuardCalibration.measure(model: model, tokenizer: tokenizer, template: Tiny.template, signal: signal,
                                                       harmless: harmless, budget: 0, maxTokens: 4)
        #expect(calibration.withinBudget && calibration.threshold == GuardCalibration.candidates.last)
        #expect(calibration.trials.count == GuardCalibration.candidates.count && calibration.prompts == 3)
        // It records the guard it calibrated, and says which guards check the same way.
        #expect(calibration.schedule == CheckSchedule.defaultAnnealing.description && calibration.tau == GuardOptions().tau)
        #expect(calibration.matches(GuardOptions()) == true)
        #expect(calibration.matches(GuardOptions(schedule: .first)) == false && calibration.matches(GuardOptions(tau: 3)) == false)
        // Records written before the settings were kept still read, and say nothing.
        var old = calibration
        old.schedule = nil
        old.tau = nil
        old.trials = old.trials.map { var t = $0; t.addedRefusal = nil; return t }
        let oldJSON = old.json
        #expect(!oldJSON.contains("schedule") && !oldJSON.contains("tau") && !oldJSON.contains("addedRefusal"))
        let decoded = try JSONDecoder().decode(GuardCalibration.self, from: Data(oldJSON.utf8))
        #expect(decoded == old && decoded.matches(GuardOptions()) == nil)
        signal.calibration = calibration
        // Stored in the /signal group and read back.
        let group = signal.tensorGroup
        #expect(group.attributes["guard_threshold"]?.doubleValue == GuardCalibration.decimal(calibration.threshold))
        #expect(GuardCalibration.decimal(0.08) == 0.08)
        let restored = try SafetySignal(group: group)
        #expect(restored.calibration == calibration)
        // The guard uses it unless its options name a threshold.
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored).threshold == calibration.threshold)
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored, options: GuardOptions(threshold: 0.3)).threshold == 0.3)
        // A guard that checks otherwise than the calibrated one is told so; one with its own threshold is not.
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored).calibrationMismatch == nil)
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored, options: GuardOptions(schedule: .first))
            .calibrationMismatch == "calibrated with schedule annealing(1, ×2.0, ≤16), τ 2; this run checks with schedule first, τ 2")
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored, options: GuardOptions(threshold: 0.3, schedule: .first))
            .calibrationMismatch == nil)
        // Calibrated on this head alone, it is told when it also reads a parent's head.
        #expect(calibration.withParent == false)
        let parent = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal)
        #expect(try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored, parent: parent).calibrationMismatch
            == "calibrated on this model's head alone; this run reads the parent's head too")
        // A head that makes every check malicious refuses at once under the calibrated threshold too.
        restored.bias.value.data[1] = 50
        let refused = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored).generate(prompt: prompt, options: GenerationOptions(maxTokens: 8))
        #expect(refused.refusalAt == 0)
    }

    /// A head whose checks spread over (0, 1) on the tiny model, and thresholds between its values.
    static func spreadHead(_ signal: SafetySignal, model: TransformerModel, tokenizer: Tokenizer, prompts: [[Int]]) throws -> [Float] {
        var rng = SeededRandom(seed: 5)
        rng.fillNormal(signal.weight.value, std: 2)
        let observe = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(threshold: 2, schedule: .every))
        let ps = try prompts.flatMap { try observe.generate(prompt: $0, options: SignalGuardTests.free).trace.map(\.pMalicious) }.sorted()
        // Thresholds at quantiles of the observed probabilities, so each one changes some decisions.
        return stride(from: 0.95, through: 0.05, by: -0.1).map { q in ps[Int(q * Double(ps.count - 1))] + 1e-4 }
    }

    @Test(arguments: [(tau: 1, schedule: CheckSchedule.every), (2, .every), (2, .defaultAnnealing), (3, .periodic(2))])
    func oneDecodingTellsWhichThresholdsIntervene(tau: Int, schedule: CheckSchedule) throws {
        let (model, tokenizer, signal, _) = try SignalGuardTests.setup(.llama)
        let prompts = ["What is 2 + 3?", "Sure, here is how", "Paris is the capital", "Sorry, I cannot", "The answer is"]
            .map { tokenizer.encode(Tiny.template.prompt($0)) }
        let thresholds = try Self.spreadHead(signal, model: model, tokenizer: tokenizer, prompts: prompts)
        let options = GuardOptions(schedule: schedule, tau: tau)
        let replay = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: options)
        var intervened = 0, left = 0
        for prompt in prompts {
            let (answer, insertions) = try replay.interventions(prompt: prompt, thresholds: thresholds, options: SignalGuardTests.free)
            for (t, insertion) in zip(thresholds, insertions) {
                var o = options
                o.threshold = t
                let live = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: o)
                    .generate(prompt: prompt, options: SignalGuardTests.free)
                // Where the refusal goes in, not only whether.
                #expect(insertion == live.refusalAt, "threshold \(t)")
                if insertion != nil { intervened += 1 } else {
                    left += 1
                    #expect(live.tokens == answer.tokens && live.text == answer.text)
                }
            }
        }
        // Both outcomes occur, or the comparison proves little.
        #expect(intervened > 0 && left > 0)
        // No threshold: the whole unguarded answer.
        let bare = try replay.interventions(prompt: prompts[0], thresholds: [], options: SignalGuardTests.free)
        #expect(bare.insertions.isEmpty && bare.answer.tokens.count == SignalGuardTests.free.maxTokens)
    }

    @Test func calibrationFromOneDecodingEqualsDecodingAtEveryThreshold() throws {
        let (model, tokenizer, signal, _) = try SignalGuardTests.setup(.llama)
        let harmless = ["What is 2 + 3?", "Sure, here is how", "Paris is the capital", "Sorry, I cannot", "The answer is",
                        "Name the capital", "How to do it"]
        _ = try Self.spreadHead(signal, model: model, tokenizer: tokenizer, prompts: harmless.map { tokenizer.encode(Tiny.template.prompt($0)) })
        let judge = RefusalJudge()
        // Budgets that stop the walk at different thresholds; the shifted head raises
        // alarms high on the ladder too.
        for (shift, budget) in [(Float(0), 0.0), (0, 0.1), (0, 0.2), (3, 0.1), (3, 0.3)] {
            signal.bias.value.data[1] += shift
            let fast = try GuardCalibration.measure(model: model, tokenizer: tokenizer, template: Tiny.template, signal: signal,
                                                    harmless: harmless, budget: budget, maxTokens: 12)
            // The reference: every prompt decoded as the guard decodes but never intervening
            // (a threshold above 1), and with the guard at each threshold the walk visits.
            let unguarded = Evaluator(model: model, tokenizer: tokenizer, template: Tiny.template,
                                      options: EvaluationOptions(maxTokens: 12, keepResponses: false),
                                      decoder: try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(threshold: 2)))
            let plain = try harmless.map { try unguarded.respond($0) }
            let slow = GuardCalibration.search(budget: budget, prompts: harmless.count, maxTokens: 12) { t in
                var o = GuardOptions()
                o.threshold = t
                let evaluator = Evaluator(model: model, tokenizer: tokenizer, template: Tiny.template,
                                          options: EvaluationOptions(maxTokens: 12, keepResponses: false),
                                          decoder: try! GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: o))
                let answers = harmless.map { try! evaluator.respond($0) }
                let added = zip(plain, answers).filter { !judge.isRefusal($0.text) && judge.isRefusal($1.text) }.count
                let n = Double(harmless.count)
                return GuardCalibration.Trial(threshold: t, overRefusal: Double(answers.filter { judge.isRefusal($0.text) }.count) / n,
                                              addedRefusal: Double(added) / n,
                                              interventions: Double(answers.filter(\.guardTriggered).count) / n)
            }
            // The search alone does not know the guard's settings; measure records them.
            #expect(fast.trials == slow.trials && fast.threshold == slow.threshold && fast.withinBudget == slow.withinBudget,
                    "budget \(budget)")
            signal.bias.value.data[1] -= shift
        }
    }

    @Test func aDamagedCalibrationIsAnErrorNamingItsKey() throws {
        let (_, _, signal, _) = try SignalGuardTests.setup()
        var group = signal.tensorGroup
        group.attributes["guard_calibration"] = .string("{\"threshold\": 7}")
        #expect(throws: SignalError.invalidGroup(key: "guard_calibration", reason: "is not a guard calibration with a threshold in (0, 1]")) {
            try SafetySignal(group: group)
        }
        #expect(throws: EvaluationError.self) {
            try GuardCalibration.measure(model: try Tiny.model(vocab: 300), tokenizer: try Tiny.tokenizer(), template: Tiny.template,
                                         signal: signal, harmless: [])
        }
    }
}
