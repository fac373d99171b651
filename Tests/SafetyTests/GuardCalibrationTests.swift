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
            return GuardCalibration.Trial(threshold: t, overRefusal: rates[t] ?? 1, interventions: 0)
        }
        #expect(c.threshold == 0.08 && c.withinBudget)
        // The walk stops at the first threshold over budget.
        #expect(asked == [0.99, 0.95, 0.9, 0.8, 0.65, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05])
        #expect(c.trials.map(\.threshold) == asked)
        // A head that raises false alarms at 0.5 gets a higher threshold.
        let alarmed = GuardCalibration.search(budget: 0.05, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: t >= 0.9 ? 0.04 : 0.2, interventions: 0)
        }
        #expect(alarmed.threshold == 0.9 && alarmed.withinBudget)
        // A model that over-refuses on its own keeps the highest threshold, marked as over budget.
        let over = GuardCalibration.search(budget: 0.01, prompts: 100, maxTokens: 8) { t in
            GuardCalibration.Trial(threshold: t, overRefusal: 0.03, interventions: 0)
        }
        #expect(over.threshold == 0.99 && !over.withinBudget && over.trials.count == 1)
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
        // A head that makes every check malicious refuses at once under the calibrated threshold too.
        restored.bias.value.data[1] = 50
        let refused = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: restored).generate(prompt: prompt, options: GenerationOptions(maxTokens: 8))
        #expect(refused.refusalAt == 0)
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
