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
        #expect(harmful.count > 400 && answered.count > 800)
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
        // The affirmative opening alone, no generic continuation for the answer probes to over-learn.
        #expect(Self.files.compliance.allSatisfy { $0.completion.hasPrefix("Sure") && !$0.completion.contains("\n") })
    }

    @Test func buildingIsDeterministic() throws {
        let again = try AlignmentCorpus(AlignmentCorpus.Parameters(source: CorpusBuilderTests.dataDirectory)).build()
        #expect(again.refusals == Self.files.refusals && again.answers == Self.files.answers && again.harmful == Self.files.harmful)
    }
}
