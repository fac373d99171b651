/// The reverse-mode tape: ops append a backward closure (their vector–Jacobian
/// product) as they run forward, and `backward` replays them in reverse.
///
/// An op records nothing when no input requires a gradient, or when recording is
/// off (`withoutGrad`), so inference pays only for the forward kernels.
/// Intermediate buffers come from `allocate`, which recycles storage released by
/// `reset()`: a training step reuses the previous step's activations' memory.
public final class Tape {
    private var backwards: [() -> Void] = []
    /// Free buffers, ascending by size, with the number of resets each has sat unused.
    private var pool: [(storage: TensorStorage, idle: Int)] = []
    private var handedOut: [TensorStorage] = []
    /// True while `backward` runs: buffers die then, and `allocate` looks for them. Only
    /// then: callers may hold a raw pointer into a forward output whose variable the
    /// compiler already released, and backward runs no caller code.
    private var inBackward = false
    /// Where packed weights are unpacked for one product: one buffer, grown to the largest
    /// packed weight, shared by every projection of this tape.
    private var unpackBuffer: TensorStorage?
    /// The last rotary table `rope` built (every layer of a step asks for the same one).
    var ropeTable: (positions: [Int32], half: Int, theta: Float, table: Tensor)?
    /// Whether ops record backward closures. Off inside `withoutGrad`.
    public private(set) var isRecording = true
    /// Set while the tape computes rows `rows` of a batch of `of` rows (one process's share
    /// in data-parallel training), so that random ops draw for these rows exactly what
    /// they would draw holding the whole batch.
    public var rowShard: (rows: Range<Int>, of: Int)?

    public init() {}

    /// Number of recorded backward closures.
    public var count: Int { backwards.count }

    /// True when an op with these inputs must record its backward.
    public func needsGrad(_ inputs: Variable?...) -> Bool {
        isRecording && inputs.contains { $0?.requiresGrad == true }
    }

    /// Appends a backward closure. Ops call this after computing their output.
    public func record(_ backward: @escaping () -> Void) {
        backwards.append(backward)
    }

    /// Runs `body` with recording off (inference, evaluation, generation).
    public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        let saved = isRecording
        isRecording = false
        defer { isRecording = saved }
        return try body()
    }

    /// Seeds d`output` = `seed` (ones for a scalar loss when nil) and runs every
    /// recorded backward closure in reverse order. Gradients accumulate into the
    /// `grad` of variables that require them.
    ///
    /// The recording is consumed (as PyTorch frees its graph): each closure is dropped
    /// once it has run, so activations and gradients that only it kept alive are reused
    /// by `allocate` for the gradients still to come, which lowers the step's peak memory.
    public func backward(_ output: Variable, seed: Tensor? = nil) {
        precondition(output.requiresGrad, "backward from a variable that does not require a gradient")
        let g = output.gradBuffer()
        if let seed {
            precondition(seed.count == g.count, "seed shape \(seed.shape) does not match \(g.shape)")
            for i in 0..<g.count { g.data[i] += seed.data[i] }
        } else {
            for i in 0..<g.count { g.data[i] += 1 }
        }
        inBackward = true
        defer { inBackward = false }
        while let step = backwards.popLast() { step() }
    }

    /// Forgets the recorded ops and returns to the pool every intermediate buffer
    /// that nothing else references any more (a tensor the caller kept, such as
    /// the logits, keeps its buffer). Call once per step, after the optimizer.
    ///
    /// Buffers idle for `maxIdleResets` resets are freed, so the pool follows the
    /// working set when batch shapes change (variable sequence lengths) instead of
    /// keeping a copy for every shape ever seen.
    public func reset() {
        backwards.removeAll(keepingCapacity: true)
        pool = pool.compactMap { $0.idle + 1 < Tape.maxIdleResets ? ($0.storage, $0.idle + 1) : nil }
        poolUnreferenced()
    }

    /// Returns to the pool, while nothing is recorded (inference), every handed-out buffer
    /// that nothing references any more, so the next ops reuse it. Without it a forward
    /// holds every block's intermediates until `reset()`: 160 MB for an evaluation batch of
    /// SmolLM2. Call it only between ops (a model does, between blocks), when no raw
    /// pointer into a dead tensor is in use.
    public func recycle() {
        guard !isRecording, !inBackward else { return }
        poolUnreferenced()
    }

    /// Moves the handed-out buffers nothing else references to the pool.
    private func poolUnreferenced() {
        var stillUsed: [TensorStorage] = []
        for i in handedOut.indices {
            if isKnownUniquelyReferenced(&handedOut[i]) {
                pool.append((handedOut[i], 0))
            } else {
                stillUsed.append(handedOut[i])
            }
        }
        pool.sort { $0.storage.count < $1.storage.count }
        handedOut = stillUsed
    }

    /// Resets a pooled buffer may sit unused before it is freed.
    static let maxIdleResets = 4

    /// Floats held by free pooled buffers (what `releaseMemory` would return).
    public var pooledElementCount: Int { pool.reduce(0) { $0 + $1.storage.count } }

    /// Drops pooled buffers.
    public func releaseMemory() {
        pool.removeAll()
        unpackBuffer = nil
    }

    /// `w`'s float32 values for one product: its `value`, or its packed copy unpacked into
    /// the tape's buffer, valid until the next call.
    func weightValues(_ w: Variable) -> UnsafePointer<Float> {
        guard let packed = w.packed else { return UnsafePointer(w.value.data) }
        precondition(!w.requiresGrad, "\(w.name): a packed weight must be frozen")
        let n = packed.rows * packed.columns
        if (unpackBuffer?.count ?? 0) < n { unpackBuffer = TensorStorage(count: n) }
        let buffer = unpackBuffer!.pointer
        packed.unpack(into: buffer)
        return UnsafePointer(buffer)
    }

    /// A tensor for an op's output or saved intermediate, recycled by `reset()` once no
    /// tensor refers to it. Zero-filled unless `zeroed` is false: an op that writes every
    /// element itself skips the fill (a recycled buffer then holds stale values).
    ///
    /// A request reuses the smallest free buffer that holds it and is at most twice its
    /// size (best fit), so steps of different shapes share memory; during `backward` it may
    /// also take a buffer whose variables have died.
    public func allocate(_ shape: [Int], zeroed: Bool = true) -> Tensor {
        let n = Tensor.elementCount(shape)
        let storage: TensorStorage
        var lo = 0, hi = pool.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pool[mid].storage.count < n { lo = mid + 1 } else { hi = mid }
        }
        if lo < pool.count, Self.fits(pool[lo].storage.count, n) {
            storage = pool.remove(at: lo).storage
            if zeroed { storage.pointer.update(repeating: 0, count: n) }
        } else if inBackward, let s = reclaim(count: n) {
            // Already listed in `handedOut`.
            if zeroed { s.pointer.update(repeating: 0, count: n) }
            return Tensor(shape: shape, storage: s)
        } else {
            // A miss means this step's shapes differ from the pooled ones (a longer or a much
            // shorter batch). The pooled buffer nearest in size is most likely this tensor's
            // own from that other step, so it goes, instead of both staying in memory.
            if let victim = Self.nearest(in: pool, around: lo, to: n) { pool.remove(at: victim) }
            storage = TensorStorage(count: n)
        }
        handedOut.append(storage)
        return Tensor(shape: shape, storage: storage)
    }

    /// A handed-out buffer that fits `count` floats and that nothing references any more
    /// (its variables died during this backward), or nil.
    private func reclaim(count n: Int) -> TensorStorage? {
        for i in handedOut.indices where Self.fits(handedOut[i].count, n) && isKnownUniquelyReferenced(&handedOut[i]) {
            return handedOut[i]
        }
        return nil
    }

    /// The index of the pooled buffer nearest in size ratio to `n`: `pool[lo - 1]` (the
    /// largest smaller one) or `pool[lo]` (the smallest larger one).
    private static func nearest(in pool: [(storage: TensorStorage, idle: Int)], around lo: Int, to n: Int) -> Int? {
        let below = lo > 0 ? Double(n) / Double(max(pool[lo - 1].storage.count, 1)) : .infinity
        let above = lo < pool.count ? Double(pool[lo].storage.count) / Double(max(n, 1)) : .infinity
        if below.isInfinite && above.isInfinite { return nil }
        return below <= above ? lo - 1 : lo
    }

    /// Whether a buffer of `capacity` floats may serve a request for `n` (at most about twice as large).
    private static func fits(_ capacity: Int, _ n: Int) -> Bool { capacity >= n && capacity <= 2 * n + 1024 }

    /// A new output variable of `shape` whose `requiresGrad` follows the inputs;
    /// `zeroed` as in `allocate`.
    public func output(_ shape: [Int], zeroed: Bool = true, _ inputs: Variable?...) -> Variable {
        let needs = isRecording && inputs.contains { $0?.requiresGrad == true }
        let v = Variable(allocate(shape, zeroed: zeroed), requiresGrad: needs)
        if needs { v.pool = self }
        return v
    }
}
