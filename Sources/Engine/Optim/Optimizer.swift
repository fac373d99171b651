/// What every optimizer offers the trainer: a step over its parameters' gradients,
/// and its state for an exact resume.
public protocol Optimizer: AnyObject {
    /// The variables it updates, in a fixed order.
    var parameters: [Variable] { get }
    /// The base learning rate; a schedule changes it between steps.
    var learningRate: Float { get set }
    /// Number of steps taken so far.
    var stepCount: Int { get }
    /// Applies one update from the current gradients. Parameters without a gradient are
    /// skipped; elements whose `updateMask` is 0 are never changed.
    func step()
    /// Step count and per-parameter buffers, keyed by parameter name.
    func exportState() -> OptimizerState
    /// Restores a state from `exportState()`, so that training continues bit-identically.
    func importState(_ state: OptimizerState) throws(OptimizerError)
    /// Frees the per-parameter buffers when no step or export follows (a finished run's
    /// final evaluation and save need only the weights). `step()` and `exportState()`
    /// afterwards stop the process.
    func releaseState()
}

extension Optimizer {
    /// Zeroes every parameter's gradient, keeping the buffers.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }
}

/// An optimizer's resumable state: its kind, step count and buffers
/// (`"<parameter name>.<buffer>"`, e.g. `"h.0.attn.c_attn.weight.exp_avg"`).
public struct OptimizerState: Sendable {
    /// `"adamw"` or `"sgd"`.
    public var kind: String
    /// Steps taken.
    public var step: Int
    /// Buffers by key.
    public var tensors: [String: Tensor]

    /// A state as read back from a checkpoint.
    public init(kind: String, step: Int, tensors: [String: Tensor]) {
        self.kind = kind
        self.step = step
        self.tensors = tensors
    }
}

/// Why an optimizer state cannot be imported.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    /// The state was written by another kind of optimizer.
    case kindMismatch(expected: String, found: String)
    /// A buffer for a parameter is missing.
    case missingBuffer(key: String)
    /// A buffer has the wrong shape for its parameter.
    case shapeMismatch(key: String, expected: [Int], found: [Int])
    /// A buffer names no parameter of this optimizer.
    case unexpectedBuffer(key: String)
    /// A negative step count.
    case invalidStep(Int)

    public var description: String {
        switch self {
        case let .kindMismatch(expected, found):
            "optimizer state: kind '\(found)' cannot be loaded into a '\(expected)' optimizer"
        case let .missingBuffer(key):
            "optimizer state: buffer '\(key)' is missing"
        case let .shapeMismatch(key, expected, found):
            "optimizer state: buffer '\(key)' has shape \(found), expected \(expected)"
        case let .unexpectedBuffer(key):
            "optimizer state: buffer '\(key)' belongs to no parameter of this optimizer"
        case let .invalidStep(step):
            "optimizer state: step count \(step) is negative"
        }
    }
}

/// Shared plumbing for optimizers that keep per-parameter buffers.
enum OptimizerSupport {
    /// Requires unique, non-empty names: they key the exported state.
    static func checkNames(_ parameters: [Variable], _ kind: String) {
        var seen = Set<String>()
        for (i, p) in parameters.enumerated() {
            precondition(!p.name.isEmpty, "\(kind): parameter \(i) has no name; names key the optimizer state")
            precondition(seen.insert(p.name).inserted, "\(kind): parameter name '\(p.name)' appears twice")
        }
    }

    /// Exports `buffers[i][b]` as `"<name>.<suffixes[b]>"`.
    static func export(_ parameters: [Variable], _ buffers: [[Tensor]], suffixes: [String]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (p, bufs) in zip(parameters, buffers) {
            for (b, s) in zip(bufs, suffixes) { out["\(p.name).\(s)"] = b.copy() }
        }
        return out
    }

    /// Validates `state` completely, then copies its buffers into `buffers`.
    static func load(_ state: OptimizerState, kind: String, into buffers: [[Tensor]], of parameters: [Variable],
                     suffixes: [String]) throws(OptimizerError) {
        guard state.kind == kind else { throw .kindMismatch(expected: kind, found: state.kind) }
        guard state.step >= 0 else { throw .invalidStep(state.step) }
        var expected = Set<String>()
        var sources: [[Tensor]] = []
        for p in parameters {
            var row: [Tensor] = []
            for s in suffixes {
                let key = "\(p.name).\(s)"
                expected.insert(key)
                guard let t = state.tensors[key] else { throw .missingBuffer(key: key) }
                guard t.shape == p.shape else { throw .shapeMismatch(key: key, expected: p.shape, found: t.shape) }
                row.append(t)
            }
            sources.append(row)
        }
        if let extra = state.tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw .unexpectedBuffer(key: extra)
        }
        for (dst, src) in zip(buffers, sources) {
            for (b, t) in zip(dst, src) { b.assign(t) }
        }
    }

    /// The mask's data when present, checked against the parameter's shape.
    static func mask(of p: Variable) -> UnsafeMutablePointer<Float>? {
        guard let m = p.updateMask else { return nil }
        precondition(m.count == p.value.count, "updateMask \(m.shape) does not match parameter '\(p.name)' \(p.shape)")
        return m.data
    }
}
