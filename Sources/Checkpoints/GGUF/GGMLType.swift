/// The tensor element types of GGML (llama.cpp's tensor library) that SafeTune reads, with
/// their block layouts. Quantised types store values in blocks of 32 (or 256 for the
/// K-quants) that share float16 scales; a row's length must be a whole number of blocks.
///
/// `dequantize` reproduces the reference dequantisation of the `gguf` Python package
/// bit for bit in float32: the same operations in the same order (checked against
/// fixtures made by `scripts/reference/make_gguf_fixtures.py`).
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q4_K = 12
    case q6_K = 14
    case bf16 = 30

    /// The name llama.cpp gives the type (`Q4_K`, `BF16`).
    public var name: String { Self.names[Int(rawValue)] }

    /// Values per block.
    public var blockValues: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18  // d, 16 bytes of nibbles
        case .q4_1: return 20  // d, m, 16 bytes of nibbles
        case .q5_0: return 22  // d, 4 bytes of fifth bits, 16 bytes of nibbles
        case .q5_1: return 24  // d, m, fifth bits, nibbles
        case .q8_0: return 34  // d, 32 signed bytes
        case .q4_K: return 144 // d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
        case .q6_K: return 210 // 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 scales, d
        }
    }

    /// The type with GGML id `id`, or an error naming it (known-but-unsupported types by name).
    static func from(id: UInt32, file: String, tensor: String) throws(GGUFError) -> GGMLType {
        if let type = GGMLType(rawValue: id) { return type }
        let known = Int(id) < names.count && !names[Int(id)].isEmpty ? "\(names[Int(id)]) (\(id))" : "type id \(id)"
        let supported = allCases.map(\.name).joined(separator: ", ")
        throw .tensor(file: file, tensor: tensor, reason: "\(known) is not supported (SafeTune reads \(supported))")
    }

    /// GGML's type names by id; empty for ids that were retired.
    static let names = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8",
        "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0", "TQ2_0", "", "", "", "MXFP4",
    ]

    /// Bytes that `count` values take; nil when `count` is not a whole number of blocks or overflows.
    public func byteCount(values count: Int) -> Int? {
        guard count >= 0, count % blockValues == 0 else { return nil }
        let (bytes, overflow) = (count / blockValues).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// Decodes `count` values (a whole number of blocks) from `src` into `dst`.
    public func dequantize(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let blocks = count / blockValues
        switch self {
        case .f32:
            // Little-endian hosts only (x86-64, arm64): the bytes are the floats.
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { dst[i] = half(src, 2 * i) }
        case .bf16:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(src, 2 * i)) << 16) }
        case .q8_0:
            for b in 0..<blocks {
                let p = src + b * 34, y = dst + b * 32
                let d = half(p, 0)
                for j in 0..<32 { y[j] = Float(Int8(bitPattern: p.load(fromByteOffset: 2 + j, as: UInt8.self))) * d }
            }
        case .q4_0:
            for b in 0..<blocks {
                let p = src + b * 18, y = dst + b * 32
                let d = half(p, 0)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = d * Float(Int(q & 0x0F) - 8)
                    y[j + 16] = d * Float(Int(q >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let p = src + b * 20, y = dst + b * 32
                let d = half(p, 0), m = half(p, 2)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = d * Float(q & 0x0F) + m
                    y[j + 16] = d * Float(q >> 4) + m
                }
            }
        case .q5_0:
            for b in 0..<blocks {
                let p = src + b * 22, y = dst + b * 32
                let d = half(p, 0)
                let high = u32(p, 2)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 6 + j, as: UInt8.self)
                    let lo = Int(q & 0x0F) | Int((high >> UInt32(j)) & 1) << 4
                    let hi = Int(q >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4
                    y[j] = d * Float(lo - 16)
                    y[j + 16] = d * Float(hi - 16)
                }
            }
        case .q5_1:
            for b in 0..<blocks {
                let p = src + b * 24, y = dst + b * 32
                let d = half(p, 0), m = half(p, 2)
                let high = u32(p, 4)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 8 + j, as: UInt8.self)
                    let lo = Int(q & 0x0F) | Int((high >> UInt32(j)) & 1) << 4
                    let hi = Int(q >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4
                    y[j] = d * Float(lo) + m
                    y[j + 16] = d * Float(hi) + m
                }
            }
        case .q4_K:
            for b in 0..<blocks {
                let p = src + b * 144, y = dst + b * 256
                let d = half(p, 0), dmin = half(p, 2)
                let s = p + 4, qs = p + 16
                // Eight sub-blocks of 32 values, each with a 6-bit scale and a 6-bit min.
                for c in 0..<8 {
                    let scale: UInt8, minimum: UInt8
                    if c < 4 {
                        scale = s.load(fromByteOffset: c, as: UInt8.self) & 0x3F
                        minimum = s.load(fromByteOffset: c + 4, as: UInt8.self) & 0x3F
                    } else {
                        let packed = s.load(fromByteOffset: c + 4, as: UInt8.self)
                        scale = (packed & 0x0F) | ((s.load(fromByteOffset: c - 4, as: UInt8.self) >> 2) & 0x30)
                        minimum = (packed >> 4) | ((s.load(fromByteOffset: c, as: UInt8.self) >> 2) & 0x30)
                    }
                    let dl = d * Float(scale), ml = dmin * Float(minimum)
                    let bytes = qs + (c / 2) * 32, shift = UInt8((c % 2) * 4)
                    for l in 0..<32 {
                        y[c * 32 + l] = dl * Float((bytes.load(fromByteOffset: l, as: UInt8.self) >> shift) & 0x0F) - ml
                    }
                }
            }
        case .q6_K:
            for b in 0..<blocks {
                let p = src + b * 210, y = dst + b * 256
                let ql = p, qh = p + 128, scales = p + 192
                let d = half(p, 208)
                // Eight runs of 32 values: run c takes the low or high nibbles of 32 bytes of
                // `ql` and one 2-bit field of 32 bytes of `qh`; every 16 values share a scale.
                for c in 0..<8 {
                    let h = c / 4, k = c % 4
                    let low = ql + h * 64 + (k % 2) * 32, lowShift = UInt8((k / 2) * 4)
                    let high = qh + h * 32, highShift = UInt8(2 * k)
                    for l in 0..<32 {
                        let q = ((low.load(fromByteOffset: l, as: UInt8.self) >> lowShift) & 0x0F)
                            | (((high.load(fromByteOffset: l, as: UInt8.self) >> highShift) & 0x03) << 4)
                        let e = c * 32 + l
                        let dl = d * Float(Int8(bitPattern: scales.load(fromByteOffset: e / 16, as: UInt8.self)))
                        y[e] = dl * Float(Int(q) - 32)
                    }
                }
            }
        }
    }

    /// The types `quantize` encodes (what `safetune export gguf` writes).
    public static let writable: [GGMLType] = [.f32, .f16, .q8_0]

    /// Encodes `count` float32 values (a whole number of blocks) as this type, one of
    /// `writable`, with the same rounding as the `gguf` package's `quantize`.
    public func quantize(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        switch self {
        case .f32:
            dst.copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { dst.storeBytes(of: Float16(src[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0:
            for b in 0..<(count / 32) {
                let x = src + b * 32, p = dst + b * 34
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(x[j])) }
                let d = amax / 127
                let id: Float = d == 0 ? 0 : 1 / d
                p.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
                // Round half away from zero, as C's roundf.
                for j in 0..<32 { p.storeBytes(of: Int8((x[j] * id).rounded()), toByteOffset: 2 + j, as: Int8.self) }
            }
        default:
            preconditionFailure("\(name) is not a type SafeTune writes")
        }
    }
}

@inline(__always) private func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always) private func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inline(__always) private func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: u16(p, offset)))
}
