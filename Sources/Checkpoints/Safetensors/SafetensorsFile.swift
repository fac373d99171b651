import Engine
import Foundation

/// Element types that may appear in a `.safetensors` header.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}

/// One tensor entry of a safetensors header: offsets are relative to the data section.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    public let dataRange: Range<Int>
}

/// A read-only, memory-mapped `.safetensors` file with a fully validated header.
///
/// The header is checked before any tensor is touched: its length is bounded, every
/// entry has a known dtype whose size times the shape's element count equals its byte
/// range, and the ranges tile the data section exactly (no gap, overlap or tail).
public final class SafetensorsFile: @unchecked Sendable {
    /// Largest JSON header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// Path used in error messages.
    public let path: String
    /// Tensor entries by name.
    public let entries: [String: SafetensorsEntry]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    private let bytes: MappedBytes
    private let dataStart: Int

    /// Maps and validates the file at `url`.
    public convenience init(contentsOf url: URL) throws(SafetensorsError) {
        let bytes: MappedBytes
        do { bytes = try MappedBytes(url: url) } catch { throw .io(file: url.path, reason: error.reason) }
        try self.init(bytes: bytes, path: url.path)
    }

    /// Validates an in-memory safetensors image; `source` names it in errors.
    public convenience init(data: Data, source: String) throws(SafetensorsError) {
        try self.init(bytes: MappedBytes(data: data), path: source)
    }

    private init(bytes: MappedBytes, path: String) throws(SafetensorsError) {
        self.bytes = bytes
        self.path = path
        let size = bytes.count
        guard size >= 8 else { throw .invalidHeader(file: path, reason: "file is \(size) bytes, shorter than the 8-byte header length") }
        let headerLength = UInt64(littleEndian: bytes.base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw .invalidHeader(file: path, reason: "header length \(headerLength) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard Int(headerLength) <= size - 8 else {
            throw .invalidHeader(file: path, reason: "header length \(headerLength) runs past the end of the \(size)-byte file")
        }
        dataStart = 8 + Int(headerLength)
        let headerData = Data(bytes: bytes.base + 8, count: Int(headerLength))
        guard let object = try? JSONSerialization.jsonObject(with: headerData), let json = object as? [String: Any] else {
            throw .invalidHeader(file: path, reason: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: SafetensorsEntry] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw .invalidHeader(file: path, reason: "__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw .invalidHeader(file: path, reason: "__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            entries[name] = try Self.parseEntry(name, value, file: path)
        }
        // The ranges must tile [0, dataSize) exactly.
        let dataSize = size - dataStart
        var cursor = 0
        for entry in entries.values.sorted(by: { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }) {
            if entry.dataRange.lowerBound < cursor {
                throw .layout(file: path, reason: "tensor '\(entry.name)' overlaps the previous tensor at offset \(entry.dataRange.lowerBound)")
            }
            if entry.dataRange.lowerBound > cursor {
                throw .layout(file: path, reason: "gap of \(entry.dataRange.lowerBound - cursor) bytes before tensor '\(entry.name)'")
            }
            cursor = entry.dataRange.upperBound
        }
        if cursor > dataSize {
            throw .layout(file: path, reason: "tensors need \(cursor) data bytes but the file holds \(dataSize)")
        }
        if cursor < dataSize {
            throw .layout(file: path, reason: "\(dataSize - cursor) trailing bytes after the last tensor")
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseEntry(_ name: String, _ value: Any, file: String) throws(SafetensorsError) -> SafetensorsEntry {
        guard let dict = value as? [String: Any] else { throw .invalidTensor(file: file, tensor: name, reason: "entry is not an object") }
        guard let dtypeName = dict["dtype"] as? String else { throw .invalidTensor(file: file, tensor: name, reason: "missing dtype") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else { throw .unsupportedDType(file: file, tensor: name, dtype: dtypeName) }
        guard let shapeValues = dict["shape"] as? [NSNumber], shapeValues.count <= 16 else {
            throw .invalidTensor(file: file, tensor: name, reason: "missing or invalid shape")
        }
        var shape: [Int] = []
        for v in shapeValues {
            guard v.doubleValue.rounded() == v.doubleValue, v.int64Value >= 0, v.int64Value <= Int64(Int.max) else {
                throw .invalidTensor(file: file, tensor: name, reason: "shape \(shapeValues) has a negative or non-integer dimension")
            }
            shape.append(v.intValue)
        }
        guard let offsets = dict["data_offsets"] as? [NSNumber], offsets.count == 2,
              offsets[0].int64Value >= 0, offsets[1].int64Value >= offsets[0].int64Value else {
            throw .invalidTensor(file: file, tensor: name, reason: "data_offsets must be [begin, end] with 0 <= begin <= end")
        }
        let begin = offsets[0].intValue, end = offsets[1].intValue
        guard let count = Tensor.checkedCount(shape), case let (bytes, false) = count.multipliedReportingOverflow(by: dtype.byteSize),
              bytes == end - begin else {
            throw .invalidTensor(file: file, tensor: name, reason: "shape \(shape) × \(dtype.rawValue) does not match the \(end - begin) bytes of data_offsets")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// Tensor names in sorted order.
    public var names: [String] { entries.keys.sorted() }

    /// One tensor converted to float32 (from F32, F16 or BF16).
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor {
        guard let entry = entries[name] else { throw .missingTensor(file: path, tensor: name) }
        let out = Tensor(zeros: entry.shape)
        let source = UnsafeRawPointer(bytes.base + dataStart + entry.dataRange.lowerBound)
        let n = out.count
        let dst = out.data
        switch entry.dtype {
        case .F32:
            // Little-endian hosts only (x86-64, arm64): the bytes are the floats.
            UnsafeMutableRawPointer(dst).copyMemory(from: source, byteCount: n * 4)
        case .F16:
            for i in 0..<n {
                dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
            }
        case .BF16:
            for i in 0..<n {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                dst[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        default:
            throw .unsupportedDType(file: path, tensor: name, dtype: entry.dtype.rawValue)
        }
        return out
    }

    /// Every tensor, as float32.
    public func tensors() throws(SafetensorsError) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in entries.keys { out[name] = try tensor(name) }
        return out
    }
}
