import Testing
@testable import Engine

@Suite struct LinearTests {
    @Test func matchesHandComputedValues() {
        let tape = Tape()
        let x = Variable(Tensor(shape: [1, 2], scalars: [1, 2]))
        let w = Variable(Tensor(shape: [3, 2], scalars: [1, 0, 0, 1, 1, 1]))
        let b = Variable(Tensor(shape: [3], scalars: [0.5, 0, -1]))
        let y = tape.linear(x, w, bias: b)
        #expect(y.value.scalars == [1.5, 2, 2])
    }

    @Test func gradients() {
        var rng = SeededRandom(seed: 1)
        func v(_ s: [Int], _ g: Bool = true) -> Variable {
            let t = Tensor(zeros: s); rng.fillUniform(t, -1, 1); return Variable(t, requiresGrad: g)
        }
        checkGradients([v([2, 3, 4]), v([5, 4]), v([5])]) { t, p in t.linear(p[0], p[1], bias: p[2]) }
        // A frozen weight gets no gradient buffer at all.
        let w = v([5, 4], false)
        checkGradients([v([3, 4]), w]) { t, p in t.linear(p[0], p[1]) }
        #expect(w.grad == nil)
    }
}
