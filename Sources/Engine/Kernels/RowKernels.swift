import Foundation

/// Row-wise loops shared by several ops, usable without a tape (inference).
public enum RowKernels {
    /// Numerically stable softmax of `count` values (max subtracted first).
    /// `src` and `dst` may be the same row.
    @inline(__always)
    public static func softmax(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = -Float.infinity
        for j in 0..<count { m = max(m, src[j]) }
        var s: Float = 0
        for j in 0..<count {
            let e = expf(src[j] - m)
            dst[j] = e
            s += e
        }
        let inv = 1 / s
        for j in 0..<count { dst[j] *= inv }
    }

    /// log Σ exp over `count` values, stable (max subtracted first).
    @inline(__always)
    public static func logSumExp(_ src: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for j in 0..<count { m = max(m, src[j]) }
        guard m.isFinite else { return m }
        var s: Float = 0
        for j in 0..<count { s += expf(src[j] - m) }
        return m + logf(s)
    }
}
