import Engine

/// Builds the SA-ESS attention mask for a batch laid out as `[CLS, BOS, prompt…, answer…,
/// padding]`: the CLS token at index 0 of every row, each row right-padded.
///
/// Rules (key j, query i, in a row with `n` real positions, CLS included, and answer
/// tokens from index `p` = 1 + prompt length):
/// - every real query reads real keys only, causally (j ≤ i), except as below for CLS;
/// - `sft`: CLS (i = 0) reads itself and the prompt (j < p); prompt queries (1 ≤ i < p)
///   never read CLS; answer queries (i ≥ p) read CLS;
/// - `pretrain`: CLS reads every real key; no other query reads CLS;
/// - padding queries read nothing (their output is zero and their loss ignored).
/// One mask `[B, T, T]` is shared by all heads.
///
/// Probe columns (training the guard's answer probes, `SignalObjective`) follow the
/// `length` columns: probe k of row b reads itself and the columns of `probes[b][k]`, no
/// other column reads it, and an unused probe column reads only itself.
public enum SignalMask {
    /// The mask for `batch` rows of `length` positions (CLS included), plus `probeColumns`
    /// probe columns (by default as many as the row with the most `probes`).
    /// `promptLengths` and `rowLengths` count tokens after CLS (BOS and prompt; all real tokens).
    public static func build(pattern: SignalPattern, batch: Int, length: Int, promptLengths: [Int],
                             rowLengths: [Int], probes: [[Range<Int>]] = [], probeColumns: Int? = nil) -> AttentionMask {
        let width = length + (probeColumns ?? probes.map(\.count).max() ?? 0)
        return AttentionMask(batch: batch, queries: width, keys: width) { b, i, j in
            if i >= length {
                let k = i - length
                return j == i || (b < probes.count && k < probes[b].count && probes[b][k].contains(j))
            }
            if j >= length { return false }
            let n = min(length, 1 + max(0, b < rowLengths.count ? rowLengths[b] : length - 1))
            let p = min(n, 1 + max(0, b < promptLengths.count ? promptLengths[b] : 0))
            return allowed(pattern: pattern, query: i, key: j, real: n, answerStart: p)
        }
    }

    /// Whether query `i` reads key `j` in a row with `real` positions whose answer starts at `answerStart`.
    @inline(__always)
    public static func allowed(pattern: SignalPattern, query i: Int, key j: Int, real n: Int, answerStart p: Int) -> Bool {
        if i >= n || j >= n { return false }
        if i == 0 {
            switch pattern {
            case .sft: return j < p
            case .pretrain: return true
            }
        }
        if j == 0 {
            switch pattern {
            case .sft: return i >= p
            case .pretrain: return false
            }
        }
        return j <= i
    }
}
