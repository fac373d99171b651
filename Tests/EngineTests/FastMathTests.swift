import Foundation
import Testing
@testable import Engine

@Suite struct FastMathTests {
    @Test func expIsAccurateOverTheWholeRange() {
        var worst = 0.0, worstAt: Float = 0
        var x: Float = -87
        while x < 87.7 {
            var v = FastMath.Vector()
            for k in 0..<16 { v[k] = x + Float(k) * 0.0137 }
            let e = FastMath.exp(v)
            for k in 0..<16 {
                let exact = Foundation.exp(Double(v[k]))
                let err = abs(Double(e[k]) - exact) / exact
                if err > worst { worst = err; worstAt = v[k] }
            }
            x += 0.2113
        }
        #expect(worst < 5e-7, "worst relative error \(worst) at \(worstAt)")
        let edge = FastMath.exp(FastMath.Vector(repeating: -100))
        #expect(edge.max() == 0)
        #expect(FastMath.exp(FastMath.Vector())[3] == 1)
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

    @Test func partialVectorsLoadAndStoreOnlyTheirLanes() {
        let src: [Float] = [1, 2, 3]
        var dst = [Float](repeating: -1, count: 5)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                let v = FastMath.load(s.baseAddress!, count: 3, pad: 7)
                #expect(v[2] == 3 && v[3] == 7)
                FastMath.store(v * 2, d.baseAddress!, count: 3)
            }
        }
        #expect(dst == [2, 4, 6, -1, -1])
    }
}
