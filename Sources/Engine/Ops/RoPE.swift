import Foundation

extension Tape {
    /// Rotary position embedding, Hugging Face Llama convention (`rotate_half`: element i
    /// pairs with i + D/2 within each head).
    ///
    /// - x: `[B, T, heads · D]`, D even
    /// - positions: B·T absolute positions, row-major over (b, t)
    /// - theta: the base (10000 for Llama 2)
    /// - returns: x's shape; for angle a = pos · θ^(-2i/D):
    ///   `y[i] = x[i] cos a - x[i+D/2] sin a`, `y[i+D/2] = x[i+D/2] cos a + x[i] sin a`
    ///
    /// Backward applies the inverse rotation (the transpose) to dy.
    public func rope(_ x: Variable, heads: Int, positions: [Int32], theta: Float) -> Variable {
        precondition(x.value.rank == 3, "rope: input must be [B, T, heads·D], got \(x.shape)")
        let width = x.shape[2], rows = x.shape[0] * x.shape[1]
        precondition(heads > 0 && width % heads == 0 && (width / heads) % 2 == 0,
                     "rope: width \(width) is not heads (\(heads)) × an even head size")
        precondition(positions.count == rows, "rope: \(positions.count) positions for \(rows) rows of \(x.shape)")
        let half = width / heads / 2
        let table = rotaryTable(positions: positions, half: half, theta: theta)
        let y = output(x.shape, zeroed: false, x)
        let xp = x.value.data, yp = y.value.data, tp = table.data
        Parallel.forEach(rows, costPerItem: 2 * width) { rs in
            for r in rs {
                RopeKernel.rotate(xp + r * width, into: yp + r * width, heads: heads, half: half,
                                  cos: tp + r * 2 * half, sin: tp + r * 2 * half + half, inverse: false)
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let tp = table.data
            let dx = x.gradBuffer().data
            Parallel.forEach(rows, costPerItem: 2 * width) { rs in
                for r in rs {
                    RopeKernel.rotate(dy + r * width, accumulatingInto: dx + r * width, heads: heads, half: half,
                                      cos: tp + r * 2 * half, sin: tp + r * 2 * half + half)
                }
            }
        }
        return y
    }

    /// `[positions.count, 2·half]`: cos then sin per row, built once and reused while
    /// the positions stay the same (all layers of a step, and steps of one shape).
    func rotaryTable(positions: [Int32], half: Int, theta: Float) -> Tensor {
        if let cached = ropeTable, cached.half == half, cached.theta == theta, cached.positions == positions {
            return cached.table
        }
        let table = Tensor(zeros: [positions.count, 2 * half])
        RopeKernel.fillTable(table.data, positions: positions, half: half, theta: theta)
        ropeTable = (positions, half, theta, table)
        return table
    }
}

/// The rotation behind `Tape.rope`, also used directly by inference code.
public enum RopeKernel {
    /// Fills `[positions.count, 2·half]` with cos then sin of pos · θ^(-2i/D), in
    /// Float32 arithmetic like the reference implementation (so long positions agree).
    public static func fillTable(_ table: UnsafeMutablePointer<Float>, positions: [Int32], half: Int, theta: Float) {
        var invFreq = [Float](repeating: 0, count: half)
        let dim = Float(2 * half)
        for i in 0..<half { invFreq[i] = 1 / powf(theta, Float(2 * i) / dim) }
        for (r, p) in positions.enumerated() {
            let row = table + r * 2 * half
            for i in 0..<half {
                let a = Float(p) * invFreq[i]
                row[i] = cosf(a)
                row[half + i] = sinf(a)
            }
        }
    }

    /// Rotates one row of `heads` heads (forward, or its inverse when `inverse`).
    @inline(__always)
    public static func rotate(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, heads: Int, half: Int,
                              cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, inverse: Bool) {
        let sgn: Float = inverse ? -1 : 1
        for h in 0..<heads {
            let s = src + h * 2 * half, d = dst + h * 2 * half
            for i in 0..<half {
                let a = s[i], b = s[i + half], c = cos[i], sn = sgn * sin[i]
                d[i] = a * c - b * sn
                d[i + half] = b * c + a * sn
            }
        }
    }

    /// Adds the inverse rotation of `src` into `dst` (the backward of `rotate`).
    @inline(__always)
    static func rotate(_ src: UnsafePointer<Float>, accumulatingInto dst: UnsafeMutablePointer<Float>, heads: Int, half: Int,
                       cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        for h in 0..<heads {
            let s = src + h * 2 * half, d = dst + h * 2 * half
            for i in 0..<half {
                let a = s[i], b = s[i + half], c = cos[i], sn = sin[i]
                d[i] += a * c + b * sn
                d[i + half] += b * c - a * sn
            }
        }
    }
}
