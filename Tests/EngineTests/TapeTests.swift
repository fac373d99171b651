import Testing
@testable import Engine

/// The tape's bookkeeping: accumulation, frozen inputs, no-grad mode, buffer reuse.
@Suite struct TapeTests {
    @Test func variableUsedTwiceAccumulatesBothPaths() {
        let x = Variable(Tensor(shape: [3], scalars: [1, -2, 0.5]), requiresGrad: true)
        let t = Tape()
        // L = Σ (x ⊙ x + x): dL/dx = 2x + 1.
        t.backward(t.sum(t.add(t.mul(x, x), x)))
        #expect(x.grad?.scalars == [3, -3, 2])
    }

    @Test func frozenInputGetsNoGradientBuffer() {
        var rng = SeededRandom(seed: 1)
        let x = randomVariable([2, 4], &rng, requiresGrad: false)
        let w = randomVariable([3, 4], &rng)
        let g = randomVariable([4], &rng, requiresGrad: false), b = randomVariable([4], &rng, requiresGrad: false)
        let t = Tape()
        let h = t.layerNorm(x, weight: g, bias: b, eps: 1e-5)
        #expect(!h.requiresGrad && t.count == 0)
        t.backward(t.sum(t.gelu(t.matmul(h, w, transposeB: true))))
        #expect(w.grad != nil)
        #expect(x.grad == nil && g.grad == nil && b.grad == nil)
    }

    @Test func microBatchesAccumulateToTheFullBatchGradient() {
        var rng = SeededRandom(seed: 2)
        let w = randomVariable([5, 3], &rng)
        let x = randomVariable([4, 3], &rng, requiresGrad: false)
        let targets: [Int32] = [0, 4, 2, 2]
        // Full batch: mean over 4 rows.
        let t = Tape()
        t.backward(t.crossEntropy(logits: t.matmul(x, w, transposeB: true), targets: targets))
        let full = w.grad!.copy()
        // Two micro-batches of 2 rows, each loss scaled by 1/2, without zeroing between.
        w.grad = nil
        for half in 0..<2 {
            let t = Tape()
            let xs = Variable(x.value.slice(2 * half..<2 * half + 2))
            let loss = t.crossEntropy(logits: t.matmul(xs, w, transposeB: true), targets: Array(targets[2 * half..<2 * half + 2]))
            t.backward(t.scale(loss, 0.5))
        }
        let accumulated = w.grad!
        for i in 0..<full.count { #expect(abs(full.data[i] - accumulated.data[i]) < 1e-6) }
    }

    @Test func noGradModeRecordsNothing() {
        var rng = SeededRandom(seed: 3)
        let w = randomVariable([4, 4], &rng)
        let t = Tape()
        let y = t.withoutGrad {
            t.softmax(t.attention(q: t.reshape(t.matmul(w, w), [1, 4, 4]), k: t.reshape(w, [1, 8, 2]),
                                  v: t.reshape(w, [1, 8, 2]), heads: 2, kvHeads: 1))
        }
        #expect(t.count == 0)
        #expect(!y.requiresGrad)
        #expect(t.isRecording)
    }

    @Test func resetRecyclesBuffersButNotOnesTheCallerKept() {
        var rng = SeededRandom(seed: 4)
        let w = randomVariable([6, 6], &rng)
        let x = randomVariable([3, 6], &rng, requiresGrad: false)
        let t = Tape()
        // Returns the logits and the identities of the [3, 6] intermediates it dropped.
        func step() -> (Variable, Set<ObjectIdentifier>) {
            let h = t.matmul(x, w), a = t.gelu(h)
            let logits = t.matmul(a, w, transposeB: true)
            t.backward(t.crossEntropy(logits: logits, targets: [0, 1, 2]))
            let ids = [h.value, a.value, h.grad!, a.grad!].map { ObjectIdentifier($0.storage) }
            return (logits, Set(ids))
        }
        let (kept, dropped) = step()
        let keptValues = kept.value.scalars
        t.reset()
        #expect(t.count == 0)
        // The next step reuses freed buffers of the same size, but never the kept one.
        w.value.data[0] += 1   // different numbers, so an overwrite would show
        let (next, reused) = step()
        #expect(kept.value.scalars == keptValues)
        #expect(!reused.contains(ObjectIdentifier(kept.value.storage)))
        #expect(ObjectIdentifier(next.value.storage) != ObjectIdentifier(kept.value.storage))
        #expect(!reused.isDisjoint(with: dropped))
        t.reset()
        // A recycled buffer comes back zeroed.
        let fresh = t.allocate([3, 6])
        #expect(reused.union(dropped).contains(ObjectIdentifier(fresh.storage)))
        #expect(fresh.scalars.allSatisfy { $0 == 0 })
        #expect(kept.value.scalars == keptValues && next.value.count == 18)
    }

    @Test func backwardThroughIntermediateGradientsUsesPooledBuffers() {
        var rng = SeededRandom(seed: 5)
        let w = randomVariable([8, 8], &rng)
        let t = Tape()
        for _ in 0..<3 {
            w.grad = nil
            t.backward(t.sum(t.gelu(t.matmul(w, w))))
            let once = w.grad!.copy()
            w.grad = nil
            t.reset()
            t.backward(t.sum(t.gelu(t.matmul(w, w))))
            // Pooled (recycled) gradient buffers start at zero: identical results.
            #expect(w.grad!.scalars == once.scalars)
            t.reset()
        }
    }
}

@Suite struct TapePoolTests {
    /// Steps of changing shapes (variable sequence lengths) reuse buffers instead of keeping
    /// one per shape: the pool stays near one step's working set.
    @Test func poolStaysBoundedWhenShapesChange() {
        let tape = Tape()
        var peak = 0
        for step in 0..<200 {
            let t = 16 + (step * 37) % 112
            for _ in 0..<20 { _ = tape.allocate([16, t, 64]) }
            tape.reset()
            peak = max(peak, tape.pooledElementCount)
        }
        let oneStep = 20 * 16 * 128 * 64
        #expect(peak <= 3 * oneStep, "pool grew to \(peak) floats; one step needs at most \(oneStep)")
    }

    /// Packed batches of a real fine-tune: more rows, then fewer than half, then more again.
    /// A step that misses the pool replaces the buffers of the other shape instead of adding
    /// to them, so memory follows the current step, not the sum of every shape seen.
    @Test func aStepOfAnotherShapeReplacesThePooledBuffers() {
        let tape = Tape()
        for shape in [[3, 512, 64], [4, 504, 64], [2, 496, 64], [4, 480, 64]] {
            for _ in 0..<20 { _ = tape.allocate(shape) }
            tape.reset()
            let step = 20 * shape.reduce(1, *)
            #expect(tape.pooledElementCount <= step + step / 20, "pool holds \(tape.pooledElementCount) floats after a step of \(step)")
        }
    }

    @Test func reusedBufferIsZeroedAndSized() {
        let tape = Tape()
        let big = tape.allocate([100])
        big.fill(7)
        tape.reset()
        let small = tape.allocate([60])
        #expect(small.count == 60 && small.scalars.allSatisfy { $0 == 0 })
    }
}
