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
        let b = Batcher(examples: Self.examples, batchSize: 4, seqLen: 64, packing: false, seed: 1, padId: 0)
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

    /// A packed batch holds the unpacked batch's examples, whole and in fewer rows; each
    /// example after the first in a row has its first label masked.
    @Test func packingLaysTheBatchesExamplesWholeIntoFewerRows() {
        let plain = Batcher(examples: Self.examples, batchSize: 5, seqLen: 16, packing: false, seed: 1, padId: 0)
        let packed = Batcher(examples: Self.examples, batchSize: 5, seqLen: 16, packing: true, seed: 1, padId: 0)
        #expect(packed.batchesPerEpoch == plain.batchesPerEpoch)
        for i in 0..<packed.batchesPerEpoch {
            let p = packed.batch(epoch: 0, index: i), u = plain.batch(epoch: 0, index: i)
            let segments = try! #require(p.segments)
            #expect(p.batch < u.batch && segments.allSatisfy { $0.reduce(0, +) <= 16 })
            var found: [[Int32]] = []
            for (r, row) in segments.enumerated() {
                var start = r * p.length
                for (k, n) in row.enumerated() {
                    let ids = Array(p.ids[start..<start + n])
                    let e = try! #require(Self.examples.first { $0.ids == ids })
                    var labels = e.labels
                    if k > 0 { labels[0] = -100 }
                    #expect(Array(p.labels[start..<start + n]) == labels)
                    found.append(ids)
                    start += n
                }
                #expect(p.rowLengths[r] == row.reduce(0, +))
            }
            let unpacked = (0..<u.batch).map { Array(u.ids[$0 * u.length..<$0 * u.length + u.rowLengths[$0]]) }
            #expect(Set(found) == Set(unpacked) && found.count == unpacked.count)
            // The second example of a shared row reads itself from position 0, not the first.
            let attention = try! #require(p.attention)
            let r = try! #require(segments.firstIndex { $0.count > 1 })
            let second = segments[r][0]
            #expect(attention.mask.isAllowed(r, second, second) && !attention.mask.isAllowed(r, second, second - 1))
            #expect(attention.positions[r * p.length + second] == 0 && attention.positions[r * p.length + second + 1] == 1)
        }
    }

    @Test func weightsSetHowOftenAnEpochShowsEachExample() {
        // Examples 0–4 weigh 3, 5–9 weigh 0.5: each epoch holds 15 + 2.5 → 18 (rounded) rows.
        let weighted = Self.examples.enumerated().map { i, e in
            var w = e
            w.weight = i < 5 ? 3 : 0.5
            return w
        }
        let b = Batcher(examples: weighted, batchSize: 3, seqLen: 64, packing: false, seed: 7, padId: 0)
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
        let plain = Batcher(examples: Self.examples, batchSize: 3, seqLen: 64, packing: false, seed: 7, padId: 0)
        #expect(plain.permutation(epoch: 2).sorted() == Array(0..<10))
    }

    @Test func groupingByLengthKeepsTheEpochAndCutsPadding() {
        // 40 examples of lengths 8, 16, ..., 64 (multiples of 8, so rounding adds no padding);
        // batches of 2 in windows of 32.
        let examples: [EncodedExample] = (0..<40).map { i in
            let n = 8 * (1 + (i * 3) % 8)
            let ids = (0..<n).map { Int32(100 + $0) }
            return EncodedExample(ids: ids, labels: ids, safetyClass: nil, promptLength: 0)
        }
        let plain = Batcher(examples: examples, batchSize: 2, seqLen: 64, packing: false, seed: 3, padId: 0)
        let grouped = Batcher(examples: examples, batchSize: 2, seqLen: 64, packing: false, groupByLength: true, seed: 3, padId: 0)
        for epoch in 0..<3 {
            // The same examples in each window of 32, only reordered.
            let a = plain.permutation(epoch: epoch), b = grouped.permutation(epoch: epoch)
            #expect(a.prefix(32).sorted() == b.prefix(32).sorted() && a.dropFirst(32).sorted() == b.dropFirst(32).sorted())
            let lengths = b.prefix(32).map { examples[$0].ids.count }
            #expect(lengths == lengths.sorted(by: >))
        }
        func padding(_ batcher: Batcher) -> Int {
            (0..<batcher.batchesPerEpoch).reduce(0) { sum, i in
                let batch = batcher.batch(epoch: 0, index: i)
                return sum + batch.batch * batch.length - batch.rowLengths.reduce(0, +)
            }
        }
        #expect(padding(grouped) * 4 < padding(plain), "grouped \(padding(grouped)), plain \(padding(plain))")
    }
}
