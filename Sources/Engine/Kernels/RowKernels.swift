import Foundation

/// Row-wise loops shared by several ops, usable without a tape (inference).
public enum RowKernels {
    /// Numerically stable softmax of `count` values (max subtracted first).
    /// `src` and `dst` may be the same row.
    @inline(__always)
    public static func softmax(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let m = FastMath.max(src, count: count)
        for j in 0..<count { dst[j] = FastMath.exp(src[j] - m) }
        let inv = 1 / FastMath.sum(dst, count: count)
        for j in 0..<count { dst[j] *= inv }
    }

    /// log Σ exp over `count` values, stable (max subtracted first). `scratch` holds
    /// `count` floats of working space.
    @inline(__always)
    public static func logSumExp(_ src: UnsafePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>) -> Float {
        let m = FastMath.max(src, count: count)
        guard m.isFinite else { return m }
        for j in 0..<count { scratch[j] = FastMath.exp(src[j] - m) }
        return m + logf(FastMath.sum(scratch, count: count))
    }
}
