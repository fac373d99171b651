import Foundation

/// Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's `AdamW` update:
/// `p ← p(1 − lr·wd)`, `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
/// `p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)`.
///
/// Elements whose `updateMask` is 0 are skipped entirely (no decay, moments untouched).
/// The step count is shared by all parameters.
public final class AdamW: Optimizer {
    public let parameters: [Variable]
    public var learningRate: Float
    /// First-moment decay.
    public var beta1: Float
    /// Second-moment decay.
    public var beta2: Float
    /// Added to the denominator for stability.
    public var eps: Float
    /// Decoupled weight decay coefficient.
    public var weightDecay: Float
    public private(set) var stepCount = 0
    private let decays: [Bool]
    private var moments: [[Tensor]]   // [exp_avg, exp_avg_sq] per parameter
    /// Whether `releaseState()` freed the buffers.
    private var released = false

    /// An optimizer over `parameters` (unique, non-empty names). `excludeFromDecay`
    /// picks parameters that get no weight decay (commonly biases and norm weights).
    public init(parameters: [Variable], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0.01, excludeFromDecay: (Variable) -> Bool = { _ in false }) {
        OptimizerSupport.checkNames(parameters, "AdamW")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        decays = parameters.map { !excludeFromDecay($0) }
        moments = parameters.map { [Tensor(zeros: $0.shape), Tensor(zeros: $0.shape)] }
    }

    public func step() {
        precondition(!released, "AdamW: step after releaseState()")
        stepCount += 1
        let t = Float(stepCount)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = eps
        let stepSize = lr / (1 - powf(b1, t))
        let bc2Sqrt = (1 - powf(b2, t)).squareRoot()
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad?.data else { continue }
            let w = p.value.data, m = moments[i][0].data, v = moments[i][1].data
            let decay: Float = decays[i] ? 1 - lr * weightDecay : 1
            let mask = OptimizerSupport.mask(of: p)
            Parallel.forEach(p.value.count, costPerItem: 16) { r in
                for j in r {
                    if let mask, mask[j] == 0 { continue }
                    let gj = g[j]
                    w[j] *= decay
                    m[j] += (gj - m[j]) * (1 - b1)
                    v[j] = v[j] * b2 + (1 - b2) * gj * gj
                    w[j] -= stepSize * m[j] / (v[j].squareRoot() / bc2Sqrt + eps)
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        precondition(!released, "AdamW: exportState after releaseState()")
        return OptimizerState(kind: "adamw", step: stepCount,
                              tensors: OptimizerSupport.export(parameters, moments, suffixes: AdamW.suffixes))
    }

    public func releaseState() {
        moments = []
        released = true
    }

    public func importState(_ state: OptimizerState) throws(OptimizerError) {
        try OptimizerSupport.load(state, kind: "adamw", into: moments, of: parameters, suffixes: AdamW.suffixes)
        stepCount = state.step
    }

    /// Buffer names, as PyTorch calls them.
    static let suffixes = ["exp_avg", "exp_avg_sq"]
}
