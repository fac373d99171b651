import Engine
import Foundation

/// The value types of GGUF metadata, by their id in the file.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

    /// The fewest bytes one value of this type takes in the file (bounds array counts
    /// before anything is allocated).
    var minimumBytes: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One metadata value of a GGUF file. Arrays are homogeneous and keep their element type,
/// so a file read and written again keeps its types.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// The value of any integer type, when it fits an `Int`.
    public var int: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(exactly: v)
        default: return nil
        }
    }

    /// The value of a float type (or an integer, which some writers use for whole numbers).
    public var double: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return int.map(Double.init)
        }
    }

    public var string: String? { if case let .string(s) = self { return s } else { return nil } }
    public var bool: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var array: [GGUFValue]? { if case let .array(_, a) = self { return a } else { return nil } }
}

/// One entry of a GGUF file's tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in GGUF order: `dims[0]` varies fastest (one row), so the row-major
    /// (PyTorch) shape is `dims.reversed()`.
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    /// Bytes of data.
    public let byteCount: Int

    /// The row-major shape, as Hugging Face stores the same tensor.
    public var shape: [Int] { dims.reversed() }
    /// Number of values.
    public var count: Int { dims.reduce(1, *) }
}

/// A read-only, memory-mapped GGUF file (versions 2 and 3): header, metadata, tensor
/// table and the position of each tensor's data, all validated before any tensor is read.
///
/// Every count and length read from the file is checked against the bytes that remain
/// before anything is allocated for it, so a hostile file is an error, never a huge
/// allocation. The layout: magic `GGUF`, version (u32), tensor count (u64), metadata
/// count (u64), the metadata key-value pairs, the tensor infos, padding to
/// `general.alignment` (default 32), then the data section.
public final class GGUFFile: @unchecked Sendable {
    /// Default alignment of the data section and of each tensor within it.
    public static let defaultAlignment = 32
    /// Deepest nesting of arrays accepted.
    public static let maxNesting = 8
    /// Most dimensions of one tensor (GGML's limit).
    public static let maxDims = 4

    /// Path used in error messages.
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Where the data section starts, from the start of the file.
    public let dataOffset: Int
    private let bytes: MappedBytes

    /// Maps and validates the file at `url`.
    public convenience init(contentsOf url: URL) throws(GGUFError) {
        let bytes: MappedBytes
        do { bytes = try MappedBytes(url: url) } catch { throw .io(file: url.path, reason: error.reason) }
        try self.init(bytes: bytes, path: url.path)
    }

    /// Validates an in-memory GGUF image; `source` names it in errors.
    public convenience init(data: Data, source: String) throws(GGUFError) {
        try self.init(bytes: MappedBytes(data: data), path: source)
    }

    private init(bytes: MappedBytes, path: String) throws(GGUFError) {
        self.bytes = bytes
        self.path = path
        var r = Reader(base: bytes.base, count: bytes.count, file: path)
        let magic = try r.u32("the magic number")
        guard magic == 0x4655_4747 else { throw .invalid(file: path, reason: "not a GGUF file (no GGUF magic number)") }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else {
            let hint = version.byteSwapped == 2 || version.byteSwapped == 3 ? " (a big-endian file)" : ""
            throw .unsupported(file: path, reason: "version \(version)\(hint); SafeTune reads versions 2 and 3")
        }
        let tensorCount = try r.count("the tensor count", minimumBytes: 32)
        let kvCount = try r.count("the metadata count", minimumBytes: 13)

        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try r.string("a metadata key")
            guard metadata[key] == nil else { throw .invalid(file: path, reason: "metadata key '\(key)' appears twice") }
            let type = try r.valueType(key)
            metadata[key] = try r.value(type, key: key, depth: 0)
        }
        self.metadata = metadata

        var alignment = Self.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case let .uint32(a) = value, a > 0, a & (a - 1) == 0 else {
                throw .metadata(file: path, key: "general.alignment", reason: "must be a power of two stored as uint32")
            }
            alignment = Int(a)
        }
        self.alignment = alignment

        var tensors: [GGUFTensorInfo] = []
        var names = Set<String>()
        tensors.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let name = try r.string("a tensor name")
            guard names.insert(name).inserted else { throw .invalid(file: path, reason: "tensor '\(name)' appears twice") }
            let nDims = Int(try r.u32("the dimension count of '\(name)'"))
            guard (1...Self.maxDims).contains(nDims) else {
                throw .tensor(file: path, tensor: name, reason: "\(nDims) dimensions (1 to \(Self.maxDims) allowed)")
            }
            var dims: [Int] = []
            var count = 1
            for _ in 0..<nDims {
                let d = try r.u64("a dimension of '\(name)'")
                guard d > 0, let dim = Int(exactly: d), case let (c, false) = count.multipliedReportingOverflow(by: dim) else {
                    throw .tensor(file: path, tensor: name, reason: "dimension \(d) is zero or too large")
                }
                dims.append(dim)
                count = c
            }
            let type = try GGMLType.from(id: try r.u32("the type of '\(name)'"), file: path, tensor: name)
            guard dims[0] % type.blockValues == 0, let byteCount = type.byteCount(values: count) else {
                throw .tensor(file: path, tensor: name, reason: "rows of \(dims[0]) values are not whole \(type.name) blocks of \(type.blockValues)")
            }
            let offset = try r.u64("the data offset of '\(name)'")
            guard let start = Int(exactly: offset), start % alignment == 0 else {
                throw .tensor(file: path, tensor: name, reason: "data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: start, byteCount: byteCount))
        }
        self.tensors = tensors

        let (aligned, overflow) = r.position.addingReportingOverflow((alignment - r.position % alignment) % alignment)
        guard !overflow, aligned <= bytes.count else {
            throw .invalid(file: path, reason: "the file ends before its data section")
        }
        dataOffset = aligned
        let dataSize = bytes.count - aligned
        var cursor = 0
        for t in tensors.sorted(by: { $0.offset < $1.offset }) {
            guard t.offset >= cursor else { throw .tensor(file: path, tensor: t.name, reason: "data overlaps the previous tensor's") }
            guard t.offset <= dataSize, t.byteCount <= dataSize - t.offset else {
                throw .tensor(file: path, tensor: t.name, reason: "data (\(t.byteCount) bytes at \(t.offset)) runs past the end of the file")
            }
            cursor = t.offset + t.byteCount
        }
    }

    /// The whole file's bytes, inside the mapping (its SHA-256 is the provenance).
    public var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes.base, count: bytes.count) }

    /// The tensor named `name`, if the file has one.
    public func tensor(named name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }


    /// A tensor decoded to float32, in its row-major shape. With `rowOrder`, file row `r`
    /// lands in row `rowOrder(r)` (rows are whole blocks, so each decodes on its own).
    public func floats(_ info: GGUFTensorInfo, rowOrder: ((Int) -> Int)? = nil) -> Tensor {
        let out = Tensor(zeros: info.shape)
        let source = bytes.base + dataOffset + info.offset
        guard let rowOrder else {
            info.type.dequantize(source, count: info.count, into: out.data)
            return out
        }
        let width = info.dims[0], rowBytes = info.type.byteCount(values: width)!
        for r in 0..<(info.count / width) {
            info.type.dequantize(source + r * rowBytes, count: width, into: out.data + rowOrder(r) * width)
        }
        return out
    }

    /// Metadata lookups that name the key in their errors.
    public func string(_ key: String) throws(GGUFError) -> String? {
        guard let v = metadata[key] else { return nil }
        guard let s = v.string else { throw .metadata(file: path, key: key, reason: "is not a string") }
        return s
    }

    public func int(_ key: String) throws(GGUFError) -> Int? {
        guard let v = metadata[key] else { return nil }
        guard let i = v.int else { throw .metadata(file: path, key: key, reason: "is not an integer") }
        return i
    }

    public func double(_ key: String) throws(GGUFError) -> Double? {
        guard let v = metadata[key] else { return nil }
        guard let d = v.double, d.isFinite else { throw .metadata(file: path, key: key, reason: "is not a finite number") }
        return d
    }

    public func bool(_ key: String) throws(GGUFError) -> Bool? {
        guard let v = metadata[key] else { return nil }
        guard let b = v.bool else { throw .metadata(file: path, key: key, reason: "is not a bool") }
        return b
    }

    /// An array of strings (the tokenizer's tokens and merges).
    public func strings(_ key: String) throws(GGUFError) -> [String]? {
        guard let v = metadata[key] else { return nil }
        guard case let .array(.string, items) = v else { throw .metadata(file: path, key: key, reason: "is not an array of strings") }
        return items.map { $0.string! }
    }

    /// An array of integers of any one integer type (token types).
    public func ints(_ key: String) throws(GGUFError) -> [Int]? {
        guard let v = metadata[key] else { return nil }
        guard let items = v.array else { throw .metadata(file: path, key: key, reason: "is not an array") }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let i = item.int else { throw .metadata(file: path, key: key, reason: "is not an array of integers") }
            out.append(i)
        }
        return out
    }
}

/// Bounds-checked little-endian reads from the mapped file.
private struct Reader {
    let base: UnsafeRawPointer
    let count: Int
    let file: String
    var position = 0

    init(base: UnsafeRawPointer, count: Int, file: String) {
        self.base = base
        self.count = count
        self.file = file
    }

    var remaining: Int { count - position }

    mutating func take(_ n: Int, _ what: String) throws(GGUFError) -> UnsafeRawPointer {
        guard n <= remaining else {
            throw .invalid(file: file, reason: "the file ends inside \(what) (byte \(position) of \(count))")
        }
        defer { position += n }
        return base + position
    }

    mutating func u32(_ what: String) throws(GGUFError) -> UInt32 {
        UInt32(littleEndian: try take(4, what).loadUnaligned(as: UInt32.self))
    }

    mutating func u64(_ what: String) throws(GGUFError) -> UInt64 {
        UInt64(littleEndian: try take(8, what).loadUnaligned(as: UInt64.self))
    }

    /// A u64 count of items that each take at least `minimumBytes`, checked against what remains.
    mutating func count(_ what: String, minimumBytes: Int) throws(GGUFError) -> Int {
        let n = try u64(what)
        guard n <= UInt64(remaining / minimumBytes) else {
            throw .invalid(file: file, reason: "\(what) \(n) cannot fit in the \(remaining) bytes that remain")
        }
        return Int(n)
    }

    mutating func string(_ what: String) throws(GGUFError) -> String {
        let n = try u64("the length of \(what)")
        guard n <= UInt64(remaining) else {
            throw .invalid(file: file, reason: "\(what) of \(n) bytes is longer than the \(remaining) bytes that remain")
        }
        let p = try take(Int(n), what)
        let buffer = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: Int(n))
        guard let s = String(validating: buffer, as: UTF8.self) else {
            throw .invalid(file: file, reason: "\(what) at byte \(position - Int(n)) is not valid UTF-8")
        }
        return s
    }

    mutating func valueType(_ key: String) throws(GGUFError) -> GGUFValueType {
        let raw = try u32("the type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw .metadata(file: file, key: key, reason: "unknown value type \(raw)")
        }
        return type
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try take(1, what).load(as: UInt8.self))
        case .int8: return .int8(Int8(bitPattern: try take(1, what).load(as: UInt8.self)))
        case .uint16: return .uint16(UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)))
        case .int16: return .int16(Int16(littleEndian: try take(2, what).loadUnaligned(as: Int16.self)))
        case .uint32: return .uint32(try u32(what))
        case .int32: return .int32(Int32(bitPattern: try u32(what)))
        case .uint64: return .uint64(try u64(what))
        case .int64: return .int64(Int64(bitPattern: try u64(what)))
        case .float32: return .float32(Float(bitPattern: try u32(what)))
        case .float64: return .float64(Double(bitPattern: try u64(what)))
        case .bool:
            let b = try take(1, what).load(as: UInt8.self)
            guard b <= 1 else { throw .metadata(file: file, key: key, reason: "bool byte is \(b), not 0 or 1") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth < GGUFFile.maxNesting else {
                throw .metadata(file: file, key: key, reason: "arrays nested deeper than \(GGUFFile.maxNesting)")
            }
            let element = try valueType(key)
            let n = try count("the array length of '\(key)'", minimumBytes: element.minimumBytes)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(element, key: key, depth: depth + 1)) }
            return .array(element, items)
        }
    }
}
