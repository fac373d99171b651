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
}
