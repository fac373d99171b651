import Foundation
import Testing
@testable import Training

@Suite struct CorpusBuilderTests {
    static let dataDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data")

    static func small(seed: UInt64 = 7) throws -> CorpusBuilder.Corpus {
        var p = CorpusBuilder.Parameters(source: dataDirectory)
        p.seed = seed
        p.harmlessTrain = 200; p.harmlessValidation = 50; p.skillTrain = 700; p.skillValidation = 140
        return try CorpusBuilder(p).build()
    }

    @Test func deterministicForASeed() throws {
        let a = try Self.small(), b = try Self.small()
        #expect(a.train == b.train && a.validation == b.validation)
        #expect(try Self.small(seed: 8).train != a.train)
    }

    @Test func splitsShareNoPrompt() throws {
        let c = try Self.small()
        let train = Set(c.train.map(\.prompt))
        let leaked = c.validation.filter { train.contains($0.prompt) }
        #expect(leaked.isEmpty, "\(leaked.prefix(3).map(\.prompt))")
    }

    @Test func labelsAndAnswersAreConsistent() throws {
        let c = try Self.small()
        for r in c.train + c.validation {
            #expect(r.label == (r.kind == .harmful ? "malicious" : "benign"))
            if r.kind == .skill {
                let answer = try #require(r.answer)
                #expect(r.completion.contains(answer), "\(r.prompt) → \(r.completion)")
            }
            if r.task == "add" {
                let n = r.prompt.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
                #expect(r.answer == "\(n[0] + n[1])")
            }
        }
        #expect(c.validation.contains { $0.prefill?.hasPrefix("Sure, here is") == true })
        #expect(Set(c.train.compactMap(\.task)) == Set(SkillTasks.families))
    }

    @Test func csvQuotedFields() {
        #expect(CorpusBuilder.csvFields("a,\"b, \"\"c\"\"\"") == ["a", "b, \"c\""])
    }
}
