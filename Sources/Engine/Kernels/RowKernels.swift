import Foundation

/// Row-wise loops shared by several ops, usable without a tape (inference).
public enum RowKernels {
    /// Numerically stable softmax of `count` values (max subtracted first).
    /// `src` and `dst` may be the same row.
    @inline(__always)
    public static func softmax(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let m = max(src, count: count)
        let s = expShifted(src, by: m, into: dst, count: count)
        scale(dst, by: 1 / s, count: count)
    }

    /// log Σ exp over `count` values, stable (max subtracted first).
    @inline(__always)
    public static func logSumExp(_ src: UnsafePointer<Float>, count: Int) -> Float {
        let m = max(src, count: count)
        guard m.isFinite else { return m }
        var acc = FastMath.Vector()
        var i = 0
        while i < count {
            let c = Swift.min(FastMath.width, count - i)
            let e = FastMath.exp(FastMath.load(src + i, count: c, pad: -.infinity) - m)
            acc += e
            i += FastMath.width
        }
        return m + logf(acc.sum())
    }

    /// Largest of `count` values (−∞ for none).
    @inline(__always)
    public static func max(_ src: UnsafePointer<Float>, count: Int) -> Float {
        var acc = FastMath.Vector(repeating: -.infinity)
        var i = 0
        while i < count {
            let c = Swift.min(FastMath.width, count - i)
            acc = pointwiseMax(acc, FastMath.load(src + i, count: c, pad: -.infinity))
            i += FastMath.width
        }
        return acc.max()
    }

    /// dst = exp(src − shift) elementwise; returns the sum of dst.
    @inline(__always)
    public static func expShifted(_ src: UnsafePointer<Float>, by shift: Float, into dst: UnsafeMutablePointer<Float>,
                                  count: Int) -> Float {
        var acc = FastMath.Vector()
        var i = 0
        while i < count {
            let c = Swift.min(FastMath.width, count - i)
            let e = FastMath.exp(FastMath.load(src + i, count: c) - shift)
            FastMath.store(e, dst + i, count: c)
            acc += e.replacing(with: 0, where: FastMath.laneIndex .>= Int32(c))
            i += FastMath.width
        }
        return acc.sum()
    }

    /// x *= s elementwise.
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        for j in 0..<count { x[j] *= s }
    }
}
