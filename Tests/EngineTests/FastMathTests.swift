import Foundation
import Testing
@testable import Engine

@Suite struct FastMathTests {
    @Test func expIsAccurateOverTheWholeRange() {
        var worst = 0.0, worstAt: Float = 0
        var x: Float = -87
        while x < 88 {
            let exact = Foundation.exp(Double(x))
            let err = abs(Double(FastMath.exp(x)) - exact) / exact
            if err > worst { worst = err; worstAt = x }
            x += 0.00731
        }
        #expect(worst < 5e-7, "worst relative error \(worst) at \(worstAt)")
        #expect(FastMath.exp(-100) == 0 && FastMath.exp(-.infinity) == 0)
        #expect(FastMath.exp(0) == 1)
        #expect(abs(FastMath.sigmoid(2) - 0.8807971) < 1e-7)
    }

    @Test func reductionsCoverTheTail() {
        let v: [Float] = (0..<19).map { Float($0) - 9 }
        v.withUnsafeBufferPointer { p in
            #expect(FastMath.sum(p.baseAddress!, count: 19) == 0)
            #expect(FastMath.max(p.baseAddress!, count: 19) == 9)
            #expect(FastMath.max(p.baseAddress!, count: 3) == -7)
            #expect(FastMath.dot(p.baseAddress!, p.baseAddress!, count: 19) == 570)
        }
    }

    @Test func geluMatchesTheTanhFormula() {
        let xs = stride(from: Float(-9), through: 9, by: 0.037).map { $0 }
        let y = Tape().gelu(Variable(Tensor(shape: [xs.count], scalars: xs))).value.scalars
        var worst = 0.0
        for (x, v) in zip(xs, y) {
            let d = Double(x)
            let exact = 0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
            worst = max(worst, abs(Double(v) - exact) / max(abs(exact), 1e-6))
        }
        #expect(worst < 2e-6, "worst relative error \(worst)")
    }
}
