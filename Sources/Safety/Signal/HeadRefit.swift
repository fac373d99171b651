import Engine
import Foundation
import Models
import Training

/// Fits the safety signal's head, and only it, to the model as it is now.
///
/// Why: the head is a linear read-out of the hidden state at CLS, and a fine-tune moves
/// those hidden states. On the aligned SmolLM2, the quickstart's benign LoRA fine-tune
/// (the SA-ESS loss on, λ 0.1) left the head reading the harmful prompts' new states as
/// less malicious, and guarded prefilling ASR went from 0.9 % to 5.7 % of 106 held-out
/// prompts (docs/experiments/quickstart-guard.md). Training the classification harder
/// during the fine-tune moves the blocks' weights along the harmful direction, which the
/// BD-VAX gate rejects as a backdoor would be; fitting the head afterwards changes no
/// weight the gate reads.
///
/// The features are what guarded decoding classifies: CLS over each labelled prompt, and a
/// probe CLS over each window of a labelled answer that the default guard checks
/// (`SignalObjective`'s answer probes). The fit is class-balanced logistic regression on
/// the difference of the head's two logits, v·x + c = z_malicious − z_benign, by gradient
/// descent started at the current head and pulled towards it (`Parameters.pull`), so a few
/// hundred examples adjust the head rather than replace it. The benign row of the head is
/// kept and the malicious row becomes benign + v, which leaves every P(malicious) a
/// function of v and c alone.
public enum HeadRefit {
    /// How the head is fitted.
    public struct Parameters: Sendable, Equatable {
        /// Gradient steps (each over every feature).
        public var iterations = 300
        /// Weight of ½‖(v, c) − (v₀, c₀)‖², relative to the mean class-balanced loss.
        public var pull: Float = 0.1
        /// Tokens read of each example: a ChatML prompt of SmolLM2 takes about 45 and the
        /// guard's checks after 1, 2, 4, 8 and 16 answer tokens fit after it.
        public var seqLen = 64
        /// At most this many examples of each class, drawn with a fixed seed: each costs a
        /// forward pass of up to `seqLen` tokens (about 2 ms a token for SmolLM2 on 2 cores).
        public var examplesPerClass = 250
        /// Examples per forward pass.
        public var rowsPerForward = 16

        /// The defaults.
        public init() {}
    }

    /// What a refit did, on the features it was fitted on.
    public struct Summary: Sendable, Equatable, Codable {
        /// Labelled examples read.
        public var examples: Int
        /// Features: CLS over a prompt, and probe windows over answers.
        public var queries: Int
        public var windows: Int
        /// Class-balanced accuracy of the head before and after.
        public var accuracyBefore: Double
        public var accuracyAfter: Double
        /// Class-balanced mean cross-entropy before and after.
        public var lossBefore: Double
        public var lossAfter: Double
        public var seconds: Double

        /// One line for a progress display.
        public var description: String {
            String(format: "head refitted on %d prompts and %d answer windows of %d examples: balanced accuracy %.1f %% → %.1f %%, loss %.3f → %.3f (%.0f s)",
                   queries, windows, examples, 100 * accuracyBefore, 100 * accuracyAfter, lossBefore, lossAfter, seconds)
        }
    }

    /// The hidden states the guard classifies, for each labelled example of `examples` on
    /// `model`: `[count, d]` row-major, with each row's class (1 malicious).
    struct Features {
        var values: [Float] = []
        var classes: [Int32] = []
        var queries = 0
        var count: Int { classes.count }
    }

    /// Refits `signal`'s head in place on `model`'s hidden states for `examples` (those
    /// without a safety class are skipped); throws when one class is missing.
    public static func refit(_ signal: SafetySignal, model: TransformerModel, examples: [EncodedExample], padId: Int32,
                             parameters: Parameters = .init()) throws(SignalError) -> Summary {
        let started = Date()
        let labelled = Self.draw(examples, perClass: parameters.examplesPerClass)
        let features = Self.features(signal: signal, model: model, examples: labelled, padId: padId, parameters: parameters)
        let malicious = features.classes.count { $0 == 1 }
        guard malicious > 0, malicious < features.count else {
            throw .model("refitting the head needs benign and malicious examples; got \(malicious) malicious of \(features.count) features")
        }
        let d = signal.hiddenSize
        let w = signal.weight.value.data, b = signal.bias.value.data
        var v = (0..<d).map { w[d + $0] - w[$0] }
        var c = b[1] - b[0]
        let before = Self.evaluate(features, v: v, c: c, d: d)
        Self.fit(features, v: &v, c: &c, d: d, parameters: parameters)
        let after = Self.evaluate(features, v: v, c: c, d: d)
        for j in 0..<d { w[d + j] = w[j] + v[j] }
        b[1] = b[0] + c
        return Summary(examples: labelled.count, queries: features.queries, windows: features.count - features.queries,
                       accuracyBefore: before.accuracy, accuracyAfter: after.accuracy, lossBefore: before.loss,
                       lossAfter: after.loss, seconds: Date().timeIntervalSince(started))
    }

    /// The labelled examples, at most `perClass` of each class: a seeded shuffle's first,
    /// in their original order.
    static func draw(_ examples: [EncodedExample], perClass: Int) -> [EncodedExample] {
        var rng = SeededRandom(seed: 0x5EED)
        var chosen = Set<Int>()
        for c: Int32 in [0, 1] {
            var indices = examples.indices.filter { examples[$0].safetyClass == c }
            for i in stride(from: indices.count - 1, to: 0, by: -1) { indices.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            chosen.formUnion(indices.prefix(perClass))
        }
        return examples.indices.filter(chosen.contains).map { examples[$0] }
    }

    /// Forward passes without gradients, `rowsPerForward` examples of similar length at a time.
    static func features(signal: SafetySignal, model: TransformerModel, examples: [EncodedExample], padId: Int32,
                         parameters: Parameters) -> Features {
        let objective = SignalObjective(signal: signal, lambda: 1, answerProbes: true)
        let d = signal.hiddenSize
        let seqLen = min(parameters.seqLen, model.config.maxPositions - 1)
        let sorted = examples.sorted { $0.ids.count < $1.ids.count }
        let tape = Tape()
        defer { tape.releaseMemory() }
        var out = Features()
        for start in stride(from: 0, to: sorted.count, by: max(1, parameters.rowsPerForward)) {
            let chunk = Array(sorted[start..<min(start + parameters.rowsPerForward, sorted.count)])
            let batch = Batcher(examples: chunk, batchSize: chunk.count, seqLen: seqLen, packing: false, seed: 0, padId: padId)
                .batch(epoch: 0, index: 0)
            tape.withoutGrad {
                let f = objective.forward(tape: tape, model: model, batch: batch)
                let h = f.hidden.value.data
                func take(_ column: Int, _ target: Int32) {
                    out.values.append(contentsOf: UnsafeBufferPointer(start: h + column * d, count: d))
                    out.classes.append(target)
                }
                for (r, target) in f.targets.enumerated() where target != -100 {
                    take(r * f.width, target)
                    out.queries += 1
                    for k in f.windows[r].indices { take(r * f.width + f.length + k, target) }
                }
            }
            tape.reset()
        }
        return out
    }

    /// Class-balanced weights: each class weighs half of the total.
    static func weights(_ f: Features) -> [Float] {
        let malicious = Float(f.classes.count { $0 == 1 }), benign = Float(f.count) - malicious
        return f.classes.map { $0 == 1 ? 0.5 / malicious : 0.5 / benign }
    }

    /// Scores s = v·x + c of every feature.
    static func scores(_ f: Features, v: [Float], c: Float, d: Int) -> [Float] {
        f.values.withUnsafeBufferPointer { x in
            (0..<f.count).map { i in
                var s = c
                for j in 0..<d { s += v[j] * x[i * d + j] }
                return s
            }
        }
    }

    /// Class-balanced accuracy and mean cross-entropy at (v, c).
    static func evaluate(_ f: Features, v: [Float], c: Float, d: Int) -> (accuracy: Double, loss: Double) {
        let a = weights(f), s = scores(f, v: v, c: c, d: d)
        var accuracy = 0.0
        for i in 0..<f.count where (s[i] > 0) == (f.classes[i] == 1) { accuracy += Double(a[i]) }
        return (accuracy, objective(f, at: v + [c], start: v + [c], pull: 0, d: d).value)
    }

    /// The fitted objective at p = (v, c): the class-balanced mean cross-entropy plus
    /// ½ · pull · ‖p − start‖², and its gradient.
    static func objective(_ f: Features, at p: [Float], start: [Float], pull: Float, d: Int) -> (value: Double, gradient: [Float]) {
        let a = weights(f), s = scores(f, v: Array(p[0..<d]), c: p[d], d: d)
        var g = [Float](repeating: 0, count: d + 1)
        var value = 0.0
        f.values.withUnsafeBufferPointer { x in
            for i in 0..<f.count {
                let y: Float = f.classes[i] == 1 ? 1 : 0
                // −log σ(±s) = softplus(∓s), written to stay finite for large |s|.
                let m = y == 1 ? -s[i] : s[i]
                value += Double(a[i]) * Double(max(m, 0) + log1p(exp(-abs(m))))
                let r = a[i] * (1 / (1 + exp(-s[i])) - y)
                for j in 0..<d { g[j] += r * x[i * d + j] }
                g[d] += r
            }
        }
        for j in 0...d {
            let delta = p[j] - start[j]
            value += Double(0.5 * pull * delta * delta)
            g[j] += pull * delta
        }
        return (value, g)
    }

    /// Minimises `objective` from (v, c) by Nesterov-accelerated gradient descent on
    /// standardised features (each coordinate centred and scaled to unit variance, so one
    /// step size suits every direction), with the step 1/L from the curvature bound
    /// L = ¼ λmax(Σ aᵢ x̃ᵢ x̃ᵢᵀ) + pull (x̃ = (x, 1)), λmax by power iteration. The pull
    /// acts in standardised units: it resists changes of the score, not of raw weights.
    static func fit(_ f: Features, v: inout [Float], c: inout Float, d: Int, parameters: Parameters) {
        let n = f.count
        var mean = [Float](repeating: 0, count: d), scale = [Float](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += f.values[i * d + j] / Float(n) } }
        for i in 0..<n {
            for j in 0..<d {
                let e = f.values[i * d + j] - mean[j]
                scale[j] += e * e / Float(n)
            }
        }
        scale = scale.map { $0 > 1e-12 ? $0.squareRoot() : 1 }
        var z = f
        for i in 0..<n { for j in 0..<d { z.values[i * d + j] = (f.values[i * d + j] - mean[j]) / scale[j] } }
        // s = v·x + c = ṽ·x̃ + c̃ with ṽ = v ⊙ scale and c̃ = c + v·mean.
        let start = (0..<d).map { v[$0] * scale[$0] } + [c + (0..<d).reduce(0) { $0 + v[$1] * mean[$1] }]

        let a = weights(z)
        var u = [Float](repeating: 1 / Float(d + 1).squareRoot(), count: d + 1)
        var lambda: Float = 0
        for _ in 0..<30 {
            var next = [Float](repeating: 0, count: d + 1)
            z.values.withUnsafeBufferPointer { x in
                for i in 0..<n {
                    var dot = u[d]
                    for j in 0..<d { dot += x[i * d + j] * u[j] }
                    let r = a[i] * dot
                    for j in 0..<d { next[j] += r * x[i * d + j] }
                    next[d] += r
                }
            }
            lambda = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard lambda > 0 else { break }
            u = next.map { $0 / lambda }
        }
        let step = 1 / (lambda / 4 + parameters.pull)
        var p = start, previous = start
        for k in 0..<parameters.iterations {
            let momentum = Float(k) / Float(k + 3)
            let y = (0...d).map { p[$0] + momentum * (p[$0] - previous[$0]) }
            let g = objective(z, at: y, start: start, pull: parameters.pull, d: d).gradient
            previous = p
            p = (0...d).map { y[$0] - step * g[$0] }
        }
        v = (0..<d).map { p[$0] / scale[$0] }
        c = p[d] - (0..<d).reduce(0) { $0 + v[$1] * mean[$1] }
    }
}
