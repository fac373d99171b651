import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

/// Every way a damaged or hostile file is rejected: one typed error naming file and dataset.
@Suite struct HostileCheckpointTests {
    let dir: URL
    init() throws { dir = try temporaryFolder("hostile") }

    func readError(_ url: URL, options: CheckpointReadOptions = .init()) -> CheckpointError? {
        do { _ = try Checkpoint.read(from: url, options: options); return nil } catch { return error }
    }

    func valid(_ name: String = "ok.h5") throws -> (URL, Checkpoint) {
        let url = dir.appendingPathComponent(name)
        let c = fullCheckpoint(TinyConfigs.gpt2)
        try c.write(to: url)
        return (url, c)
    }

    /// Names quoted from a damaged file may hold line breaks; the description stays one line.
    @Test func descriptionsEscapeLineBreaks() {
        let error = CheckpointError.missingAttribute(file: "f.h5", object: "/adapters/a\nb/A", attribute: "sha256")
        #expect(error.description == #"f.h5: /adapters/a\u{a}b/A: missing attribute 'sha256'"#)
    }

    @Test func truncatedFile() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let (url, _) = try valid()
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        guard case .truncated(url.path)? = readError(url) else { Issue.record("expected truncated, got \(String(describing: readError(url)))"); return }
        #expect(readError(url)!.description == "\(url.path): truncated or damaged HDF5 file")
    }

    @Test func notHDF5() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.h5")
        try Data(repeating: 0x41, count: 4096).write(to: url)
        guard case .notHDF5(url.path)? = readError(url) else { Issue.record("expected notHDF5"); return }
    }

    @Test func unknownAndNewerFormatVersions() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        for version: AttributeValue in [.int(2), .int(0), .string("one")] {
            let (url, _) = try valid()
            let f = try HDF5File.open(url, writable: true)
            try f.setAttribute("format_version", version, on: "/")
            try f.close()
            guard case .unsupportedVersion(url.path, version.description, Checkpoint.formatVersion)? = readError(url) else {
                Issue.record("version \(version): expected unsupportedVersion, got \(String(describing: readError(url)))"); continue
            }
        }
        let (url, _) = try valid()
        let f = try HDF5File.open(url, writable: true)
        try f.setAttribute("format", .string("something-else"), on: "/")
        try f.close()
        guard case .notCheckpoint? = readError(url) else { Issue.record("expected notCheckpoint"); return }
    }

    @Test func missingDataset() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = fullCheckpoint(TinyConfigs.gpt2)
        c.weights["transformer.h.1.mlp.c_fc.bias"] = nil
        let url = dir.appendingPathComponent("missing.h5")
        try writeUnchecked(c, to: url)
        guard case .missingDataset(url.path, "/weights/transformer.h.1.mlp.c_fc.bias")? = readError(url) else {
            Issue.record("got \(String(describing: readError(url)))"); return
        }
    }

    @Test func shapeThatDisagreesWithTheConfig() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = fullCheckpoint(TinyConfigs.gpt2)
        c.weights["transformer.h.0.attn.c_attn.weight"] = Tensor(zeros: [48, 16])  // transposed: Llama layout
        let url = dir.appendingPathComponent("shape.h5")
        try writeUnchecked(c, to: url)
        guard case .shapeMismatch(url.path, "/weights/transformer.h.0.attn.c_attn.weight", [16, 48], [48, 16])? = readError(url) else {
            Issue.record("got \(String(describing: readError(url)))"); return
        }
    }

    @Test func nanAndInfInWeights() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        for bad in [Float.nan, -Float.infinity] {
            var c = fullCheckpoint(TinyConfigs.gpt2)
            let t = c.weights["transformer.ln_f.weight"]!.copy()
            t[flat: 5] = bad
            c.weights["transformer.ln_f.weight"] = t
            let url = dir.appendingPathComponent("nan.h5")
            try c.write(to: url)
            guard case .nonFinite(url.path, "/weights/transformer.ln_f.weight", 5)? = readError(url) else {
                Issue.record("\(bad): got \(String(describing: readError(url)))"); continue
            }
        }
    }

    @Test func tamperedTensorIsReportedByName() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let (url, c) = try valid()
        #expect(readError(url) == nil)
        // Find the raw bytes of one tensor in the file and change one of them.
        let target = c.weights["transformer.h.1.mlp.c_proj.weight"]!
        let needle = Data(bytes: target.data, count: 4 * target.count)
        var bytes = try Data(contentsOf: url)
        let range = try #require(bytes.range(of: needle))
        bytes[range.lowerBound + 101] ^= 0x01
        try bytes.write(to: url)
        guard case .checksumMismatch(url.path, "/weights/transformer.h.1.mlp.c_proj.weight")? = readError(url) else {
            Issue.record("got \(String(describing: readError(url)))"); return
        }
        var skip = CheckpointReadOptions()
        skip.verifyChecksums = false
        #expect(readError(url, options: skip) == nil, "only the checksum reveals this change")
    }

    @Test func shapeTooLargeIsRefusedBeforeAllocating() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        // A signal tensor declaring 2^44 elements (64 TiB of floats); HDF5 allocates its
        // storage lazily, so the file itself stays small.
        let (url, _) = try valid()
        let f = try HDF5File.open(url, writable: true)
        try f.declare("/signal/huge", shape: [1 << 22, 1 << 22], as: Float.self)
        try f.close()
        let size = try #require(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(size < 10_000_000)
        guard case .tooLarge(url.path, "/signal/huge", [1 << 22, 1 << 22], _)? = readError(url) else {
            Issue.record("got \(String(describing: readError(url)))"); return
        }
        // Limits apply to the total too.
        let (small, _) = try valid("small.h5")
        var tight = CheckpointReadOptions()
        tight.maxTotalElements = 1000
        guard case .tooLarge(small.path, _, _, 1000)? = readError(small, options: tight) else { Issue.record("total limit ignored"); return }
    }

    @Test func errorsAreOneLine() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let (url, _) = try valid()
        let data = try Data(contentsOf: url)
        try data.prefix(1000).write(to: url)
        let description = try #require(readError(url)).description
        #expect(!description.contains("\n") && description.contains(url.path))
    }
}
