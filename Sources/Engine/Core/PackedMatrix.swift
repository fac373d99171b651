/// A frozen `[rows, columns]` weight kept in fewer bits than float32, for LoRA training:
/// the projections that read it (`Tape.linear`) unpack it into a scratch buffer and multiply
/// as before, so a model whose frozen weights are packed computes exactly what a float32
/// model holding the unpacked values computes.
///
/// Formats:
/// - `float16`: IEEE half precision, 2 bytes a weight (relative error at most 2⁻¹¹).
/// - `q8_0`: llama.cpp's block format with a float32 scale: each row in blocks of 32
///   weights, `q = round(x / s)` in -127...127 with `s = max|x| / 127`; 1.125 bytes a weight.
public final class PackedMatrix: @unchecked Sendable {
    /// How the weights are stored.
    public enum Format: String, Sendable, CaseIterable {
        case float16
        case q8_0
    }

    /// Weights per q8_0 block.
    public static let blockSize = 32

    public let format: Format
    public let rows: Int
    public let columns: Int
    /// The packed bytes, in a tensor storage so that they go back to the system when freed
    /// (a large heap block would stay in the process): float16 bit patterns, or q8_0 codes
    /// followed by one float32 scale a block.
    private let storage: TensorStorage

    private var blocksPerRow: Int { (columns + Self.blockSize - 1) / Self.blockSize }
    private var halves: UnsafeMutablePointer<UInt16> { UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self) }
    private var codes: UnsafeMutablePointer<Int8> { UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: Int8.self) }
    /// After the codes, padded to a float.
    private var scales: UnsafeMutablePointer<Float> { storage.pointer + (rows * columns + 3) / 4 }

    /// Packs `matrix` `[rows, columns]`. Its values must be finite.
    public init(_ matrix: Tensor, format: Format) {
        precondition(matrix.rank == 2, "PackedMatrix: a matrix, not \(matrix.shape)")
        self.format = format
        rows = matrix.shape[0]
        columns = matrix.shape[1]
        let n = rows * columns, values = matrix.data
        switch format {
        case .float16:
            storage = TensorStorage(count: (n + 1) / 2)
            let halves = UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { halves[i] = Float16(values[i]).bitPattern }
        case .q8_0:
            let blocks = (columns + Self.blockSize - 1) / Self.blockSize
            storage = TensorStorage(count: (n + 3) / 4 + rows * blocks)
            let codes = UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: Int8.self)
            let scales = storage.pointer + (n + 3) / 4
            for r in 0..<rows {
                for b in 0..<blocks {
                    let lo = r * columns + b * Self.blockSize, hi = min(lo + Self.blockSize, (r + 1) * columns)
                    var largest: Float = 0
                    for i in lo..<hi { largest = max(largest, abs(values[i])) }
                    let scale = largest / 127
                    scales[r * blocks + b] = scale
                    guard scale > 0 else { continue }
                    for i in lo..<hi { codes[i] = Int8((values[i] / scale).rounded()) }
                }
            }
        }
    }

    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// Bytes the packed weights take.
    public var bytes: Int {
        switch format {
        case .float16: return 2 * rows * columns
        case .q8_0: return rows * columns + 4 * rows * blocksPerRow
        }
    }

    /// Writes the float32 values of every row into `destination` (`rows × columns`, row-major).
    /// Eight or sixteen lanes at a time: this runs for every packed product of a step.
    public func unpack(into destination: UnsafeMutablePointer<Float>) {
        switch format {
        case .float16:
            let h = halves, n = rows * columns
            var i = 0
            while i + 8 <= n {
                let raw = UnsafeRawPointer(h + i).loadUnaligned(as: SIMD8<UInt16>.self)
                UnsafeMutableRawPointer(destination + i).storeBytes(of: Self.widen(raw), as: SIMD8<Float>.self)
                i += 8
            }
            for j in i..<n { destination[j] = Float(Float16(bitPattern: h[j])) }
        case .q8_0:
            let q = codes, s = scales, blocks = blocksPerRow
            for r in 0..<rows {
                for b in 0..<blocks {
                    let scale = s[r * blocks + b]
                    let lo = r * columns + b * Self.blockSize, hi = min(lo + Self.blockSize, (r + 1) * columns)
                    var i = lo
                    while i + 16 <= hi {
                        let raw = UnsafeRawPointer(q + i).loadUnaligned(as: SIMD16<Int8>.self)
                        let values = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: raw)) * scale
                        UnsafeMutableRawPointer(destination + i).storeBytes(of: values, as: SIMD16<Float>.self)
                        i += 16
                    }
                    for j in i..<hi { destination[j] = Float(q[j]) * scale }
                }
            }
        }
    }

    /// Half-precision bit patterns to floats without a conversion instruction (the build
    /// targets baseline x86-64): the exponent and mantissa shifted into place and rescaled
    /// by 2¹¹², which handles normal and subnormal values alike, then the sign. Values are
    /// finite (packing takes finite weights), so infinities and NaNs need no case.
    @inline(__always)
    static func widen(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        let x = SIMD8<UInt32>(truncatingIfNeeded: h)
        let magnitude = unsafeBitCast((x & 0x7fff) &<< 13, to: SIMD8<Float>.self) * 0x1p112
        return unsafeBitCast(unsafeBitCast(magnitude, to: SIMD8<UInt32>.self) | ((x & 0x8000) &<< 16), to: SIMD8<Float>.self)
    }

    /// The unpacked values as a new tensor.
    public func unpacked() -> Tensor {
        let t = Tensor(zeros: shape)
        unpack(into: t.data)
        return t
    }
}
