/// Branch-free scalar math that the compiler vectorises inside simple loops (GELU, SiLU,
/// softmax, cross-entropy), where libm's calls dominated the step time, plus chunked
/// reductions. Accurate to a few units in the last place (relative error < 5e-7).
public enum FastMath {
    /// eˣ: Cody–Waite reduction x = n·ln2 + r, a degree-6 polynomial for eʳ (Cephes
    /// `expf` coefficients) and 2ⁿ built in the exponent bits. Inputs above 88 are
    /// clamped to 88; below −87.3 the result is 0.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let xc = x < -87.33654 ? -87.33654 : (x > 88 ? 88 : x)
        // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
        let t = xc * 1.442695040888963 + 12_582_912
        let n = t - 12_582_912
        let r = (xc - n * 0.693359375) + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * (r * r) + r + 1
        let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
        return x < -87.33654 ? 0 : y * scale
    }

    /// Logistic function 1 / (1 + e⁻ˣ).
    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float {
        1 / (1 + exp(-x))
    }

    /// Σ of `count` values, eight partial sums at a time.
    @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }

    /// Largest of `count` values (−∞ for none).
    @inline(__always)
    public static func max(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            // `pointwiseMax` is not inlined (a call per 8 values); a lane select is one `maxps`.
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.replace(with: v, where: v .> acc)
            i += 8
        }
        var m = acc.max()
        while i < count { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    /// Σ a ⊙ b over `count` values, eight partial sums at a time.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }
}
