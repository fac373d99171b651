import Testing
@testable import Engine

/// A tiny transformer built only from tape ops learns a short sequence by heart.
@Suite struct EndToEndTests {
    /// Two pre-norm blocks (GQA attention with RoPE, SwiGLU MLP), a final norm and a
    /// tied output embedding.
    struct TinyTransformer {
        let vocab = 16, d = 16, heads = 4, kvHeads = 2, ff = 32, layers = 2
        var params: [Variable] = []

        init(seed: UInt64) {
            var rng = SeededRandom(seed: seed)
            func p(_ name: String, _ shape: [Int], std: Float) -> Variable {
                let t = Tensor(zeros: shape)
                rng.fillNormal(t, std: std)
                return Variable(t, requiresGrad: true, name: name)
            }
            func ones(_ name: String) -> Variable { Variable(Tensor(repeating: 1, shape: [d]), requiresGrad: true, name: name) }
            func zeros(_ name: String) -> Variable { Variable(Tensor(zeros: [d]), requiresGrad: true, name: name) }
            let kv = d / heads * kvHeads
            params.append(p("wte", [vocab, d], std: 0.1))
            for l in 0..<layers {
                params += [ones("\(l).ln.w"), zeros("\(l).ln.b"), p("\(l).qkv", [d + 2 * kv, d], std: 0.2),
                           p("\(l).o", [d, d], std: 0.2), ones("\(l).rms.w"), p("\(l).gate", [ff, d], std: 0.2),
                           p("\(l).up", [ff, d], std: 0.2), p("\(l).down", [d, ff], std: 0.2)]
            }
            params += [ones("ln_f.w"), zeros("ln_f.b")]
        }

        func loss(_ t: Tape, ids: [Int32], targets: [Int32]) -> Variable {
            let tokens = ids.count, kv = d / heads * kvHeads
            let positions = (0..<tokens).map(Int32.init)
            var h = t.embedding(ids: ids, shape: [1, tokens], table: params[0])
            for l in 0..<layers {
                let w = Array(params[1 + 8 * l..<9 + 8 * l])
                let a = t.layerNorm(h, weight: w[0], bias: w[1], eps: 1e-5)
                let qkv = t.split(t.linear(a, w[2]), sizes: [d, kv, kv])
                let q = t.rope(qkv[0], heads: heads, positions: positions, theta: 10_000)
                let k = t.rope(qkv[1], heads: kvHeads, positions: positions, theta: 10_000)
                let att = t.attention(q: q, k: k, v: qkv[2], heads: heads, kvHeads: kvHeads)
                h = t.add(h, t.linear(att, w[3]))
                let m = t.rmsNorm(h, weight: w[4], eps: 1e-6)
                h = t.add(h, t.linear(t.swiglu(gate: t.linear(m, w[5]), up: t.linear(m, w[6])), w[7]))
            }
            let f = t.layerNorm(h, weight: params[params.count - 2], bias: params[params.count - 1], eps: 1e-5)
            let logits = t.matmul(f, params[0], transposeB: true)
            return t.crossEntropy(logits: logits, targets: targets)
        }
    }

    @Test func overfitsAShortSequence() {
        let model = TinyTransformer(seed: 7)
        let sequence: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3]
        let ids = Array(sequence.dropLast()), targets = Array(sequence.dropFirst())
        let opt = AdamW(parameters: model.params, learningRate: 1e-2, weightDecay: 0)
        let schedule = LearningRateSchedule.cosine(warmupSteps: 10)
        let tape = Tape()
        let steps = 150
        var first: Float = 0, last: Float = .infinity
        for step in 0..<steps {
            opt.zeroGrad()
            let loss = tape.loss(model, ids: ids, targets: targets)
            if step == 0 { first = loss.value.scalars[0] }
            last = loss.value.scalars[0]
            if last < 0.05 { break }
            tape.backward(loss)
            clipGradNorm(model.params, maxNorm: 1)
            opt.learningRate = 1e-2 * schedule.multiplier(step: step, totalSteps: steps)
            opt.step()
            tape.reset()
        }
        #expect(first > 2)   // about log(16) at initialisation
        #expect(last < 0.05, "loss \(last) after \(opt.stepCount) steps")
    }
}

extension Tape {
    /// Reads better in the training loop above.
    fileprivate func loss(_ model: EndToEndTests.TinyTransformer, ids: [Int32], targets: [Int32]) -> Variable {
        model.loss(self, ids: ids, targets: targets)
    }
}
