import Engine
import Foundation

/// Picks the next token from a row of logits: greedy (temperature 0), or sampling at a
/// temperature restricted to the top-k tokens and/or the smallest set whose probability
/// reaches top-p. Randomness comes from a caller-owned `SeededRandom`, so a seed fixes the
/// whole generation.
public struct Sampler: Sendable, Equatable {
    /// 0 means greedy (argmax); otherwise logits are divided by it before the softmax.
    public var temperature: Float
    /// Keep only the k most likely tokens (nil or 0: no limit).
    public var topK: Int?
    /// Keep the most likely tokens until their probability reaches p (nil or ≥ 1: no limit).
    public var topP: Float?

    /// A sampler; the defaults are plain sampling at temperature 1.
    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// Always the most likely token (the first one on ties).
    public static let greedy = Sampler(temperature: 0)

    /// The chosen token id for `logits` (`V` values).
    public func sample(_ logits: UnsafeBufferPointer<Float>, rng: inout SeededRandom) -> Int {
        let v = logits.count
        if temperature <= 0 || v <= 1 { return Self.argmax(logits) }
        let k = min(topK.flatMap { $0 > 0 ? $0 : nil } ?? v, v)
        let p = topP.flatMap { $0 < 1 ? max($0, 0) : nil }
        let invT = 1 / temperature
        // Candidates: all tokens, or the best k (largest logit first, lower id first on ties).
        var ids: [Int]
        if k < v || p != nil {
            ids = Array(0..<v)
            let better: (Int, Int) -> Bool = { a, b in logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
            if k <= 256 {
                ids = Self.best(k, of: ids, by: better)
            } else {
                ids.sort(by: better)
                if k < v { ids.removeLast(v - k) }
            }
        } else {
            ids = []
        }
        let count = ids.isEmpty ? v : ids.count
        @inline(__always) func logit(_ i: Int) -> Float { logits[ids.isEmpty ? i : ids[i]] }
        var maxLogit = -Float.infinity
        for i in 0..<count { maxLogit = max(maxLogit, logit(i)) }
        if !maxLogit.isFinite { return Self.argmax(logits) }
        var probs = [Float](repeating: 0, count: count)
        var total: Float = 0
        for i in 0..<count {
            probs[i] = expf((logit(i) - maxLogit) * invT)
            total += probs[i]
        }
        var kept = count
        if let p {
            // ids are sorted best first: keep the shortest prefix whose mass reaches p (at least one).
            var mass: Float = 0
            kept = 0
            while kept < count {
                mass += probs[kept] / total
                kept += 1
                if mass >= p { break }
            }
            total = probs[0..<kept].reduce(0, +)
        }
        let r = rng.uniform() * total
        var acc: Float = 0
        for i in 0..<kept {
            acc += probs[i]
            if r < acc { return ids.isEmpty ? i : ids[i] }
        }
        return ids.isEmpty ? kept - 1 : ids[kept - 1]
    }

    /// Convenience over an array.
    public func sample(_ logits: [Float], rng: inout SeededRandom) -> Int {
        logits.withUnsafeBufferPointer { sample($0, rng: &rng) }
    }

    /// Index of the largest value, the first on ties.
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<max(x.count, 1) where x[i] > x[best] { best = i }
        return best
    }

    /// The `k` best elements of `ids` under `better`, best first, without sorting all of them.
    private static func best(_ k: Int, of ids: [Int], by better: (Int, Int) -> Bool) -> [Int] {
        var top: [Int] = []
        top.reserveCapacity(k + 1)
        for id in ids {
            if top.count == k, let last = top.last, !better(id, last) { continue }
            // Insertion into a short sorted list: k is small in practice.
            var lo = 0, hi = top.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if better(top[mid], id) { lo = mid + 1 } else { hi = mid }
            }
            top.insert(id, at: lo)
            if top.count > k { top.removeLast() }
        }
        return top
    }
}
