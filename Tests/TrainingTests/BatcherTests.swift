import Testing
@testable import Training

@Suite struct BatcherTests {
    /// Ten examples of lengths 3...12; the first token of each is an untrained prompt.
    static let examples: [EncodedExample] = (0..<10).map { (i: Int) -> EncodedExample in
        let ids: [Int32] = (0..<(3 + i)).map { (t: Int) -> Int32 in Int32(100 + i * 10 + t) }
        var labels = ids
        labels[0] = -100
        return EncodedExample(ids: ids, labels: labels, safetyClass: Int32(i % 2), promptLength: 1)
    }

    @Test func paddingKeepsRowsIntactAndMasksPadding() {
        let b = Batcher(examples: Self.examples, batchSize: 4, seqLen: 64, packing: false, seed: 1, padId: 0, separatorId: 0)
        #expect(b.batchesPerEpoch == 2)
        let batch = b.batch(epoch: 0, index: 1)
        #expect(batch.length % 8 == 0 && batch.length >= batch.rowLengths.max()!)
        for r in 0..<batch.batch {
            let start = r * batch.length, end = start + batch.rowLengths[r]
            let row: [Int32] = Array(batch.ids[start..<end])
            let match = Self.examples.first { $0.ids == row }
            #expect(match != nil && batch.safetyClasses[r] == match?.safetyClass)
            let padding: [Int32] = Array(batch.labels[end..<(start + batch.length)])
            #expect(padding.allSatisfy { $0 == -100 })
        }
        // Same (seed, epoch) → same order; another epoch → another order.
        #expect(b.batch(epoch: 0, index: 1).ids == batch.ids)
        #expect(b.permutation(epoch: 0) != b.permutation(epoch: 1))
    }

    @Test func packingFillsRowsWithSeparatedExamples() {
        let b = Batcher(examples: Self.examples, batchSize: 2, seqLen: 16, packing: true, seed: 1, padId: 0, separatorId: 9)
        let total = Self.examples.reduce(0) { $0 + $1.ids.count + 1 }
        #expect(b.batchesPerEpoch == total / 16 / 2)
        var stream: [Int32] = []
        for i in 0..<b.batchesPerEpoch {
            let batch = b.batch(epoch: 0, index: i)
            #expect(batch.batch == 2 && batch.length == 16 && batch.rowLengths == [16, 16])
            stream += batch.ids
        }
        // The stream is the epoch's examples in order, each followed by the separator.
        var expected: [Int32] = []
        for i in b.permutation(epoch: 0) { expected += Self.examples[i].ids + [9] }
        #expect(stream == Array(expected[0..<stream.count]))
    }

    @Test func weightsSetHowOftenAnEpochShowsEachExample() {
        // Examples 0–4 weigh 3, 5–9 weigh 0.5: each epoch holds 15 + 2.5 → 18 (rounded) rows.
        let weighted = Self.examples.enumerated().map { i, e in
            var w = e
            w.weight = i < 5 ? 3 : 0.5
            return w
        }
        let b = Batcher(examples: weighted, batchSize: 3, seqLen: 64, packing: false, seed: 7, padId: 0, separatorId: 0)
        #expect(b.batchesPerEpoch == 6)
        var seen = [Int](repeating: 0, count: weighted.count)
        let epochs = 8
        for epoch in 0..<epochs {
            let order = b.permutation(epoch: epoch)
            #expect(order.count == 18)
            for i in order { seen[i] += 1 }
        }
        // Over 8 epochs: 24 showings for weight 3 and 4 for weight 0.5, give or take the
        // few rows the fixed epoch length adds or drops.
        for i in 0..<5 { #expect((22...26).contains(seen[i]), "example \(i): \(seen[i])") }
        for i in 5..<10 { #expect((2...6).contains(seen[i]), "example \(i): \(seen[i])") }
        #expect(seen[0..<5].reduce(0, +) > 4 * seen[5...].reduce(0, +))
        // Weight 1 everywhere is the plain permutation (unweighted runs are unchanged).
        let plain = Batcher(examples: Self.examples, batchSize: 3, seqLen: 64, packing: false, seed: 7, padId: 0, separatorId: 0)
        #expect(plain.permutation(epoch: 2).sorted() == Array(0..<10))
    }
}
