import Foundation
import Testing
import TestSupport
@testable import Checkpoints

/// Builds GGUF bytes field by field, so each test can break exactly one thing.
private struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func pad(to alignment: Int = 32) { while bytes.count % alignment != 0 { bytes.append(0) } }

    /// A valid file: one string and one uint32 key, one F32 tensor `w` of `dims`.
    static func valid(tensors: UInt64 = 1, keys: UInt64 = 2, dims: [UInt64] = [4, 2], type: UInt32 = 0, offset: UInt64 = 0,
                      alignmentKey: UInt32? = nil, dataBytes: Int = 32) -> [UInt8] {
        var b = GGUFBytes()
        b.u32(0x4655_4747)
        b.u32(3)
        b.u64(tensors)
        b.u64(keys + (alignmentKey == nil ? 0 : 1))
        b.string("general.architecture"); b.u32(8); b.string("llama")
        b.string("test.count"); b.u32(4); b.u32(7)
        if let a = alignmentKey { b.string("general.alignment"); b.u32(4); b.u32(a) }
        b.string("w"); b.u32(UInt32(dims.count)); for d in dims { b.u64(d) }; b.u32(type); b.u64(offset)
        b.pad(to: Int(alignmentKey ?? 32))
        b.bytes += [UInt8](repeating: 0, count: dataBytes)
        return b.bytes
    }

    /// The header up to the first metadata key, then `body`.
    static func header(tensors: UInt64 = 0, keys: UInt64 = 1, _ body: (inout GGUFBytes) -> Void) -> [UInt8] {
        var b = GGUFBytes()
        b.u32(0x4655_4747)
        b.u32(3)
        b.u64(tensors)
        b.u64(keys)
        body(&b)
        return b.bytes
    }
}

@Suite("Hostile GGUF files are one-line errors, before any large allocation")
struct HostileGGUFTests {
    static func parse(_ bytes: [UInt8]) -> GGUFError? {
        do { _ = try GGUFFile(data: Data(bytes), source: "x.gguf"); return nil } catch { return error }
    }

    static func expectError(_ bytes: [UInt8], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = parse(bytes) else {
            Issue.record("accepted a hostile file", sourceLocation: sourceLocation)
            return
        }
        #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("x.gguf: "), sourceLocation: sourceLocation)
    }

    @Test func theValidBaseParses() throws {
        let file = try GGUFFile(data: Data(GGUFBytes.valid()), source: "x.gguf")
        #expect(file.tensors.map(\.shape) == [[2, 4]])
        #expect(file.metadata["test.count"] == .uint32(7))
        #expect(file.dataOffset % 32 == 0)
    }

    @Test func everyTruncationIsAnError() {
        let valid = GGUFBytes.valid()
        for length in 0..<(valid.count - 1) {
            // Cutting only the data's tail leaves a tensor short: also an error.
            #expect(Self.parse(Array(valid.prefix(length))) != nil, "prefix of \(length) bytes was accepted")
        }
    }

    @Test func magicAndVersion() {
        Self.expectError(Array("GGML".utf8) + [UInt8](repeating: 0, count: 20), mentioning: "not a GGUF file")
        var v1 = GGUFBytes.valid()
        v1[4] = 1
        Self.expectError(v1, mentioning: "version 1")
        var bigEndian = GGUFBytes.valid()
        bigEndian[4] = 0; bigEndian[7] = 3
        Self.expectError(bigEndian, mentioning: "big-endian")
    }

    @Test func hugeCountsAreRejectedBeforeAllocating() {
        Self.expectError(GGUFBytes.valid(tensors: UInt64.max), mentioning: "tensor count")
        Self.expectError(GGUFBytes.valid(keys: 1 << 60), mentioning: "metadata count")
        Self.expectError(GGUFBytes.header { b in
            b.string("k"); b.u32(9); b.u32(6); b.u64(1 << 62)
        }, mentioning: "array length of 'k'")
        Self.expectError(GGUFBytes.header { b in b.u64(UInt64.max); b.bytes += [UInt8](repeating: 0, count: 32) }, mentioning: "longer than")
        Self.expectError(GGUFBytes.header { b in b.string("k"); b.u32(8); b.u64(1 << 40) }, mentioning: "longer than")
    }

    @Test func deepNestingAndUnknownTypes() {
        Self.expectError(GGUFBytes.header { b in
            b.string("k"); b.u32(9)
            for _ in 0..<20 { b.u32(9); b.u64(1) }
            b.u32(4); b.u64(1); b.u32(0)
        }, mentioning: "nested deeper")
        Self.expectError(GGUFBytes.header { b in b.string("k"); b.u32(13); b.u32(0) }, mentioning: "unknown value type 13")
        Self.expectError(GGUFBytes.header { b in b.string("k"); b.u32(7); b.bytes.append(2) }, mentioning: "bool byte is 2")
        Self.expectError(GGUFBytes.header(keys: 2) { b in
            b.string("k"); b.u32(4); b.u32(1); b.string("k"); b.u32(4); b.u32(2)
        }, mentioning: "appears twice")
        Self.expectError(GGUFBytes.header { b in b.u64(2); b.bytes += [0xC3, 0x28] + [UInt8](repeating: 0, count: 32) }, mentioning: "not valid UTF-8")
    }

    @Test func badTensorEntries() {
        Self.expectError(GGUFBytes.valid(type: 13), mentioning: "Q5_K (13) is not supported")
        Self.expectError(GGUFBytes.valid(type: 99), mentioning: "type id 99")
        Self.expectError(GGUFBytes.valid(dims: [0, 2]), mentioning: "dimension 0")
        Self.expectError(GGUFBytes.valid(dims: [1 << 40, 1 << 40]), mentioning: "too large")
        Self.expectError(GGUFBytes.valid(dims: [1, 1, 1, 1, 1]), mentioning: "5 dimensions")
        Self.expectError(GGUFBytes.valid(dims: [33, 1], type: 8), mentioning: "not whole Q8_0 blocks")
        Self.expectError(GGUFBytes.valid(offset: 8), mentioning: "not a multiple of the alignment")
        Self.expectError(GGUFBytes.valid(offset: 1 << 20), mentioning: "runs past the end")
        Self.expectError(GGUFBytes.valid(dims: [1024, 1024]), mentioning: "runs past the end")
        Self.expectError(GGUFBytes.valid(alignmentKey: 24), mentioning: "power of two")
    }

    @Test func overlappingTensors() {
        var b = GGUFBytes()
        b.u32(0x4655_4747); b.u32(3); b.u64(2); b.u64(0)
        for name in ["a", "b"] { b.string(name); b.u32(1); b.u64(8); b.u32(0); b.u64(0) }
        b.pad()
        b.bytes += [UInt8](repeating: 0, count: 64)
        Self.expectError(b.bytes, mentioning: "overlaps")
    }

    @Test func importNamesTheMissingPieces() throws {
        // A well-formed file that is not a model SafeTune can build.
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("x.gguf")
        try Data(GGUFBytes.valid()).write(to: url)
        #expect(throws: GGUFError.self) { try GGUFModel.importModel(from: url) }
        do { _ = try GGUFModel.importModel(from: url) } catch {
            #expect(error.description.contains("llama.embedding_length"), "\(error.description)")
        }
    }

    @Test(.enabled(if: BuiltBinary.safetune.url != nil))
    func commandExitsTwoWithOneLine() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("bad.gguf")
        try Data(GGUFBytes.valid(tensors: UInt64.max)).write(to: url)
        let out = folder.appendingPathComponent("out.h5")
        let r = try BuiltBinary.safetune.run(["import", "gguf", url.path, "-o", out.path])
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("error: \(url.path): invalid GGUF: the tensor count"))
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}
