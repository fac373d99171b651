import Foundation
import Testing
@testable import Engine

@Suite struct OptimizerTests {
    /// Two named parameters with fixed gradients.
    func parameters() -> [Variable] {
        let a = Variable(Tensor(shape: [2, 2], scalars: [1, -2, 0.5, 3]), requiresGrad: true, name: "a")
        let b = Variable(Tensor(shape: [3], scalars: [0.1, 0.2, -0.3]), requiresGrad: true, name: "b")
        return [a, b]
    }

    func setGradients(_ ps: [Variable], step: Int) {
        for (k, p) in ps.enumerated() {
            let g = p.gradBuffer()
            for i in 0..<g.count { g.data[i] = sin(Float(i + 3 * k + 7 * step)) }
        }
    }

    @Test func adamWMatchesHandComputedSteps() {
        let ps = parameters()
        let start = ps.map { $0.value.scalars }
        let opt = AdamW(parameters: ps, learningRate: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5,
                        excludeFromDecay: { $0.name == "b" })
        var m = ps.map { [Double](repeating: 0, count: $0.value.count) }
        var v = m
        var w = start.map { $0.map(Double.init) }
        for step in 1...3 {
            setGradients(ps, step: step)
            opt.step()
            for (k, p) in ps.enumerated() {
                for i in 0..<p.value.count {
                    let g = Double(p.grad!.data[i])
                    if k == 0 { w[k][i] *= 1 - 0.1 * 0.5 }
                    m[k][i] = 0.9 * m[k][i] + 0.1 * g
                    v[k][i] = 0.99 * v[k][i] + 0.01 * g * g
                    let mhat = m[k][i] / (1 - pow(0.9, Double(step))), vhat = v[k][i] / (1 - pow(0.99, Double(step)))
                    w[k][i] -= 0.1 * mhat / (vhat.squareRoot() + 1e-8)
                    #expect(abs(Double(p.value.data[i]) - w[k][i]) < 1e-5, "step \(step) \(p.name)[\(i)]")
                }
            }
        }
        #expect(opt.stepCount == 3)
        // First step of Adam moves every element by about lr (sign of the gradient).
        #expect(abs(Double(start[1][0]) - w[1][0]) > 0.05)
    }

    @Test func maskedElementsStayBitIdentical() {
        for kind in ["adamw", "sgd"] {
            let ps = parameters()
            ps[0].updateMask = Tensor(shape: [2, 2], scalars: [1, 0, 0, 1])
            ps[1].updateMask = Tensor(shape: [3], scalars: [0, 0, 0])
            let frozen = [ps[0].value.data[1], ps[0].value.data[2]] + ps[1].value.scalars
            let opt: any Optimizer = kind == "adamw"
                ? AdamW(parameters: ps, learningRate: 0.05, weightDecay: 0.3)
                : SGD(parameters: ps, learningRate: 0.05, momentum: 0.9, weightDecay: 0.3)
            let before = ps[0].value.data[0]
            for step in 0..<200 {
                setGradients(ps, step: step)
                opt.step()
            }
            let now = [ps[0].value.data[1], ps[0].value.data[2]] + ps[1].value.scalars
            #expect(now.map(\.bitPattern) == frozen.map(\.bitPattern), "\(kind)")
            #expect(ps[0].value.data[0] != before, "\(kind): unmasked elements still train")
            let state = opt.exportState()
            // Moments of frozen elements were never touched.
            let key = kind == "adamw" ? "b.exp_avg" : "b.momentum_buffer"
            #expect(state.tensors[key]?.scalars == [0, 0, 0])
        }
    }

    @Test func sgdMomentumMatchesHandComputedSteps() {
        let ps = parameters()
        var w = ps.map { $0.value.scalars.map(Double.init) }
        var buf = w.map { $0.map { _ in 0.0 } }
        let opt = SGD(parameters: ps, learningRate: 0.1, momentum: 0.8, weightDecay: 0.01)
        for step in 0..<3 {
            setGradients(ps, step: step)
            opt.step()
            for (k, p) in ps.enumerated() {
                for i in 0..<p.value.count {
                    let g = Double(p.grad!.data[i]) + 0.01 * w[k][i]
                    buf[k][i] = step == 0 ? g : 0.8 * buf[k][i] + g
                    w[k][i] -= 0.1 * buf[k][i]
                    #expect(abs(Double(p.value.data[i]) - w[k][i]) < 1e-5)
                }
            }
        }
    }

    @Test func resumeContinuesBitIdentically() throws {
        for kind in ["adamw", "sgd"] {
            func make(_ ps: [Variable]) -> any Optimizer {
                kind == "adamw" ? AdamW(parameters: ps, learningRate: 0.01, weightDecay: 0.1)
                    : SGD(parameters: ps, learningRate: 0.01, momentum: 0.9)
            }
            let ps = parameters(), opt = make(ps)
            for step in 0..<5 { setGradients(ps, step: step); opt.step() }
            let saved = opt.exportState()
            let copies = ps.map { Variable($0.value.copy(), requiresGrad: true, name: $0.name) }
            for step in 5..<10 { setGradients(ps, step: step); opt.step() }

            let resumed = make(copies)
            try resumed.importState(saved)
            #expect(resumed.stepCount == 5)
            for step in 5..<10 { setGradients(copies, step: step); resumed.step() }
            for (p, c) in zip(ps, copies) {
                #expect(p.value.scalars.map(\.bitPattern) == c.value.scalars.map(\.bitPattern), "\(kind)")
            }
        }
    }

    @Test func importRejectsMismatchedStates() {
        let opt = AdamW(parameters: parameters())
        var state = opt.exportState()
        #expect(throws: OptimizerError.kindMismatch(expected: "sgd", found: "adamw")) {
            try SGD(parameters: parameters(), learningRate: 1).importState(state)
        }
        state.tensors["a.exp_avg"] = Tensor(zeros: [4])
        #expect(throws: OptimizerError.shapeMismatch(key: "a.exp_avg", expected: [2, 2], found: [4])) {
            try opt.importState(state)
        }
        state.tensors["a.exp_avg"] = nil
        #expect(throws: OptimizerError.missingBuffer(key: "a.exp_avg")) { try opt.importState(state) }
        var extra = opt.exportState()
        extra.tensors["c.exp_avg"] = Tensor(zeros: [1])
        #expect(throws: OptimizerError.unexpectedBuffer(key: "c.exp_avg")) { try opt.importState(extra) }
        #expect(OptimizerError.missingBuffer(key: "a.exp_avg").description.contains("a.exp_avg"))
    }

    @Test func clipGradNormScalesToMaxNorm() {
        let ps = parameters()
        ps[0].gradBuffer().assign(Tensor(shape: [2, 2], scalars: [3, 0, 0, 0]))
        ps[1].gradBuffer().assign(Tensor(shape: [3], scalars: [0, 4, 0]))
        #expect(abs(clipGradNorm(ps, maxNorm: 10) - 5) < 1e-6)
        #expect(ps[0].grad!.data[0] == 3)   // under the limit: unchanged
        #expect(abs(clipGradNorm(ps, maxNorm: 1) - 5) < 1e-6)
        #expect(abs(ps[0].grad!.data[0] - 0.6) < 1e-5 && abs(ps[1].grad!.data[1] - 0.8) < 1e-5)
        // Frozen elements do not count.
        ps[1].updateMask = Tensor(shape: [3], scalars: [1, 0, 1])
        #expect(abs(clipGradNorm(ps, maxNorm: 100) - 0.6) < 1e-5)
    }

    @Test func scheduleValuesAtKeySteps() {
        let c = LearningRateSchedule.constant(warmupSteps: 10)
        #expect(c.multiplier(step: 0, totalSteps: 100) == 0)
        #expect(c.multiplier(step: 5, totalSteps: 100) == 0.5)
        #expect(c.multiplier(step: 10, totalSteps: 100) == 1)
        #expect(c.multiplier(step: 99, totalSteps: 100) == 1)
        let l = LearningRateSchedule.linear(warmupSteps: 10)
        #expect(l.multiplier(step: 10, totalSteps: 110) == 1)
        #expect(l.multiplier(step: 60, totalSteps: 110) == 0.5)
        #expect(l.multiplier(step: 110, totalSteps: 110) == 0)
        let k = LearningRateSchedule.cosine(warmupSteps: 0)
        #expect(k.multiplier(step: 0, totalSteps: 100) == 1)
        #expect(abs(k.multiplier(step: 50, totalSteps: 100) - 0.5) < 1e-6)
        #expect(abs(k.multiplier(step: 25, totalSteps: 100) - 0.8535534) < 1e-6)
        #expect(k.multiplier(step: 100, totalSteps: 100) == 0)
        #expect(LearningRateSchedule.cosine(warmupSteps: 4).multiplier(step: 1, totalSteps: 100) == 0.25)
    }
}
