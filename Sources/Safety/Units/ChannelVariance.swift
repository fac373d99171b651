import Engine

/// Per-channel mean and variance of activations `[N, C]` streamed in chunks, in Double.
///
/// Each chunk is reduced exactly (two passes over data that is still in cache: mean, then
/// squared deviations) and merged into the running totals with Chan's pairwise update, so
/// the result is as stable as a two-pass variance over the whole stream while reading
/// every activation once from the forward pass. Buffers are allocated once per channel
/// count; adding a chunk allocates nothing.
public final class ChannelVariance {
    /// Channels per row.
    public let channels: Int
    /// Rows accumulated so far.
    public private(set) var count = 0
    /// One block: running mean, running M2, chunk mean, chunk M2 (`channels` each).
    private let buffer: UnsafeMutablePointer<Double>

    /// An empty accumulator for rows of `channels` values.
    public init(channels: Int) {
        self.channels = channels
        buffer = .allocate(capacity: 4 * max(channels, 1))
        buffer.initialize(repeating: 0, count: 4 * max(channels, 1))
    }

    deinit { buffer.deallocate() }

    /// Adds the rows of `x` (viewed as `[rows, channels]`) whose index `include` accepts.
    /// `include` is called once per row, so padding can be skipped.
    public func add(_ x: Tensor, include: (Int) -> Bool) {
        precondition(x.lastDim == channels, "ChannelVariance: rows of \(x.lastDim), expected \(channels)")
        var kept: [Int] = []
        kept.reserveCapacity(x.rows)
        for r in 0..<x.rows where include(r) { kept.append(r) }
        add(x, rows: kept)
    }

    /// Adds the listed rows of `x` (viewed as `[rows, channels]`).
    public func add(_ x: Tensor, rows: [Int]) {
        let n = rows.count
        guard n > 0 else { return }
        let c = channels, data = x.data
        let total = Double(count + n), nA = Double(count), nB = Double(n)
        let out = UncheckedSendable((buffer, buffer + c, buffer + 2 * c, buffer + 3 * c))
        // Channel ranges are disjoint across workers; each walks all kept rows for its range.
        Parallel.forEach(c, costPerItem: 2 * n) { range in
            let (mean, m2, cm, cm2) = out.value
            for j in range { cm[j] = 0; cm2[j] = 0 }
            for r in rows {
                let row = data + r * c
                for j in range { cm[j] += Double(row[j]) }
            }
            for j in range { cm[j] /= nB }
            for r in rows {
                let row = data + r * c
                for j in range {
                    let d = Double(row[j]) - cm[j]
                    cm2[j] += d * d
                }
            }
            for j in range {
                let delta = cm[j] - mean[j]
                mean[j] += delta * nB / total
                m2[j] += cm2[j] + delta * delta * nA * nB / total
            }
        }
        count += n
    }

    /// Population variance of each channel (0 before any row).
    public var variance: [Double] {
        guard count > 0 else { return [Double](repeating: 0, count: channels) }
        return (0..<channels).map { buffer[channels + $0] / Double(count) }
    }

    /// Mean of each channel.
    public var means: [Double] { (0..<channels).map { buffer[$0] } }
}
