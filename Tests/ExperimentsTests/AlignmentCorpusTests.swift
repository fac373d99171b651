@testable import Experiments
import Foundation
import Safety
import Testing

@Suite struct AlignmentCorpusTests {
    static let files: AlignmentCorpus.Files = {
        try! AlignmentCorpus(AlignmentCorpus.Parameters(source: CorpusBuilderTests.dataDirectory)).build()
    }()

    @Test func heldOutPromptsAreNeverTrainedOn() {
        let f = Self.files
        let trained = Set(f.refusals.map(\.prompt) + f.answers.map(\.prompt) + f.compliance.map(\.prompt))
        for (name, records) in [("harmful", f.harmful), ("harmless", f.harmless), ("borderline", f.borderline), ("skills", f.skills),
                                ("calibration", f.calibration), ("finetune", f.finetune)] {
            #expect(!records.isEmpty, "\(name) is empty")
            #expect(records.allSatisfy { !trained.contains($0.prompt) }, "\(name) shares a prompt with training")
        }
        #expect(Set(f.calibration.map(\.prompt)).isDisjoint(with: f.finetune.map(\.prompt)))
        #expect(f.harmful.allSatisfy { $0.label == "malicious" } && f.borderline.allSatisfy { $0.label == "benign" })
    }

    @Test func harmfulPromptsGetVariedRefusalsAndNoBorderlineAnswerRefuses() throws {
        let judge = RefusalJudge()
        let harmful = Self.files.refusals, answered = Self.files.answers
        #expect(harmful.allSatisfy { $0.kind == .harmful } && answered.allSatisfy { $0.kind == .harmless })
        #expect(harmful.count > 400 && answered.count > 1_800)
        #expect(answered.allSatisfy { judge.complies($0.completion) })
        #expect(harmful.allSatisfy { judge.isRefusal($0.completion) })
        #expect(Set(harmful.map(\.completion)).count > 100)
        // Borderline answers the judge reads as refusals are left out, so the set cannot teach refusing words.
        let text = try String(contentsOf: CorpusBuilderTests.dataDirectory.appendingPathComponent("borderline/train.jsonl"), encoding: .utf8)
        let borderline = Set(text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["prompt"] as? String
        })
        let trainedBorderline = answered.filter { borderline.contains($0.prompt) }
        #expect(trainedBorderline.count > 250)
        #expect(trainedBorderline.allSatisfy { judge.complies($0.completion) })
        #expect(Self.files.skills.allSatisfy { $0.answer != nil && $0.completion.isEmpty })
        // AdvBench's affirmative opening alone (no generic continuation for the answer probes to
        // over-learn), and the base's own compliant answers to harmful training prompts.
        let compliance = Self.files.compliance
        let openings = compliance.filter { $0.completion.hasPrefix("Sure") && !$0.completion.contains("\n") }
        #expect(openings.count > 250 && compliance.count - openings.count > 400)
        #expect(compliance.allSatisfy { $0.label == "malicious" })
        #expect(compliance.filter { !openings.contains($0) }.allSatisfy { judge.complies($0.completion) })
        #expect(Set(compliance.map(\.prompt)).isSubset(of: Set(harmful.map(\.prompt)).union(openings.map(\.prompt))))
    }

    @Test func buildingIsDeterministic() throws {
        let again = try AlignmentCorpus(AlignmentCorpus.Parameters(source: CorpusBuilderTests.dataDirectory)).build()
        #expect(again.refusals == Self.files.refusals && again.answers == Self.files.answers && again.harmful == Self.files.harmful)
    }
}
