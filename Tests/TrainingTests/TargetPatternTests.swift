import Testing
@testable import Training

@Suite("Adapter target patterns")
struct TargetPatternTests {
    private func pattern(_ text: String) throws -> TargetPattern {
        try #require(TargetPattern.parse(text).0)
    }

    @Test("a pattern matches a dotted name suffix on component boundaries, with globs")
    func matching() throws {
        #expect(try pattern("q_proj").matches(module: "model.layers.0.self_attn.q_proj"))
        #expect(try !pattern("q_proj").matches(module: "model.layers.0.self_attn.xq_proj"))
        #expect(try pattern("attn.c_proj").matches(module: "transformer.h.3.attn.c_proj"))
        #expect(try !pattern("attn.c_proj").matches(module: "transformer.h.3.mlp.c_proj"))
        #expect(try pattern("*_proj").matches(module: "model.layers.1.mlp.down_proj"))
        #expect(try pattern("layers.1?.mlp.*").matches(module: "model.layers.12.mlp.up_proj"))
        #expect(try !pattern("layers.1?.mlp.*").matches(module: "model.layers.2.mlp.up_proj"))
    }

    @Test("patterns that cannot match a known module are rejected")
    func validation() {
        #expect(TargetPattern.parse("q_prj").0 == nil)
        #expect(TargetPattern.parse("q_prj").suggestion == "q_proj")
        #expect(TargetPattern.parse("a..q_proj").0 == nil)
        #expect(TargetPattern.parse("q-proj").0 == nil)
        #expect(TargetPattern.parse("").0 == nil)
    }
}
