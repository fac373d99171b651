/// Vectorised transcendental functions for the elementwise kernels (GELU, SiLU,
/// softmax, cross-entropy), where libm's scalar calls dominated the step time.
/// Accurate to a few units in the last place (relative error < 5e-7).
public enum FastMath {
    /// Lanes per vector.
    public static let width = 16
    /// A vector of lanes.
    public typealias Vector = SIMD16<Float>

    /// eˣ per lane: Cody–Waite reduction x = n·ln2 + r, a degree-6 polynomial for eʳ
    /// (Cephes `expf` coefficients), and 2ⁿ built in the exponent bits. Inputs are
    /// clamped to [-87.3, 88]; below -87.3 the result is 0.
    @inline(__always)
    public static func exp(_ x: Vector) -> Vector {
        let tooSmall = x .< -87.33654
        let xc = x.clamped(lowerBound: Vector(repeating: -87.33654), upperBound: Vector(repeating: 88))
        // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
        let magic = Vector(repeating: 12_582_912)
        let t = xc * 1.442695040888963 + magic
        let n = t - magic
        let r = (xc - n * 0.693359375) + n * 2.12194440e-4
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * (r * r) + r + 1
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: Vector.self)
        return (y * scale).replacing(with: 0, where: tooSmall)
    }

    /// Logistic function 1 / (1 + e⁻ˣ) per lane.
    @inline(__always)
    public static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    /// 0, 1, …, 15: masks the lanes past the end of a partial vector.
    public static let laneIndex = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

    /// Loads `count` (≤ 16) floats; the other lanes get `pad`.
    @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int = 16, pad: Float = 0) -> Vector {
        if count == width { return UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
        var v = Vector(repeating: pad)
        for k in 0..<count { v[k] = p[k] }
        return v
    }

    /// Stores the first `count` (≤ 16) lanes.
    @inline(__always)
    public static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>, count: Int = 16) {
        if count == width {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
            return
        }
        for k in 0..<count { p[k] = v[k] }
    }
}
