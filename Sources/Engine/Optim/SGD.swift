/// Stochastic gradient descent with momentum, PyTorch's `SGD` update:
/// `g ← g + wd·p` (coupled L2), `b ← μb + g` (b = g on the first step), `p ← p − lr·b`
/// (`p ← p − lr·g` when μ = 0).
///
/// Elements whose `updateMask` is 0 are skipped entirely.
public final class SGD: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    /// Momentum coefficient μ.
    public var momentum: Float
    /// L2 penalty added to the gradient.
    public var weightDecay: Float
    public private(set) var stepCount = 0
    private var buffers: [[Tensor]]   // [momentum_buffer] per parameter
    /// Whether `releaseState()` freed the buffers.
    private var released = false

    /// An optimizer over `parameters` (unique, non-empty names).
    public init(parameters: [Variable], learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        OptimizerSupport.checkNames(parameters, "SGD")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        buffers = parameters.map { [Tensor(zeros: $0.shape)] }
    }

    public func step() {
        precondition(!released, "SGD: step after releaseState()")
        let first = stepCount == 0
        stepCount += 1
        let lr = learningRate, mu = momentum, wd = weightDecay
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad?.data else { continue }
            let w = p.value.data, b = buffers[i][0].data
            let mask = OptimizerSupport.mask(of: p)
            Parallel.forEach(p.value.count, costPerItem: 8) { r in
                for j in r {
                    if let mask, mask[j] == 0 { continue }
                    let gj = g[j] + wd * w[j]
                    if mu == 0 {
                        w[j] -= lr * gj
                    } else {
                        b[j] = first ? gj : mu * b[j] + gj
                        w[j] -= lr * b[j]
                    }
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        precondition(!released, "SGD: exportState after releaseState()")
        return OptimizerState(kind: "sgd", step: stepCount,
                              tensors: OptimizerSupport.export(parameters, buffers, suffixes: ["momentum_buffer"]))
    }

    public func releaseState() {
        buffers = []
        released = true
    }

    public func importState(_ state: OptimizerState) throws(OptimizerError) {
        try OptimizerSupport.load(state, kind: "sgd", into: buffers, of: parameters, suffixes: ["momentum_buffer"])
        stepCount = state.step
    }
}
