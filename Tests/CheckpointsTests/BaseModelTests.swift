import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Checkpoints

@Suite("The pinned base model")
struct BaseModelTests {
    /// `scripts/fetch-base-model` reads `scripts/base-model.env`; the Swift side states the same pin.
    @Test func pinMatchesTheFetchScript() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("scripts/base-model.env"), encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        let m = BaseModel.smolLM2
        #expect(values["MODEL_PACKAGE"] == m.package)
        #expect(values["MODEL_VERSION"] == m.version)
        #expect(values["MODEL_MEMBER"] == m.member)
        #expect(values["MODEL_FILE"] == m.file)
        #expect(values["MODEL_SHA256"] == m.sha256)
    }

    @Test func cacheFollowsTheEnvironment() {
        #expect(BaseModel.cacheDirectory(environment: ["SAFETUNE_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"]).path == "/c")
        #expect(BaseModel.cacheDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]).path == "/x/safetune")
        #expect(BaseModel.cacheDirectory(environment: ["HOME": "/h"]).path == "/h/.cache/safetune")
        #expect(BaseModel.smolLM2.cachedURL(environment: ["SAFETUNE_CACHE": "/c"]).path == "/c/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    @Test func aMissingModelNamesTheFileAndTheFetchCommand() {
        do {
            _ = try BaseModel.smolLM2.locate(environment: ["SAFETUNE_CACHE": "/nonexistent-safetune-cache"])
            Issue.record("found a model in a folder that does not exist")
        } catch {
            #expect(error.description.contains("/nonexistent-safetune-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
            #expect(error.description.contains("scripts/setup"))
        }
        #expect(BaseModel.named("smollm2") == .smolLM2)
        #expect(BaseModel.named("gpt2") == nil)
    }

    /// A damaged or truncated cached file is caught by its hash before use, with the command
    /// that fetches it again; a good one is hashed once and then recognised by its stamp.
    @Test func aDamagedModelIsRefusedByItsHash() throws {
        let content = Data("a model file".utf8)
        let (dir, pinned, url, environment) = try Self.cachedModel(content)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try pinned.locate(environment: environment) == url)
        #expect(FileManager.default.fileExists(atPath: url.deletingLastPathComponent().appendingPathComponent(".m.gguf.verified").path))
        #expect(try pinned.locate(environment: environment) == url)

        try content.prefix(5).write(to: url)  // truncated
        do {
            _ = try pinned.locate(environment: environment)
            Issue.record("a truncated model was accepted")
        } catch {
            #expect(error.description.contains("damaged or truncated") && error.description.contains("scripts/fetch-base-model"))
        }
    }

    /// A byte changed in place after the stamp was written, with the size kept and the
    /// modification time set back to the stamped one, is still caught: the stamp holds the
    /// change time, which no program can set back.
    @Test func damageInPlaceIsCaughtDespiteAnOldStamp() throws {
        let (dir, pinned, url, environment) = try Self.cachedModel(Data("a model file, hashed once".utf8))
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try pinned.locate(environment: environment) == url)
        try Self.flipByteKeepingModificationTime(url, at: 3)
        do {
            _ = try pinned.locate(environment: environment)
            Issue.record("a model damaged in place was accepted on its old stamp")
        } catch {
            #expect(error.description.contains("damaged or truncated") && error.description.contains("scripts/fetch-base-model"))
        }
    }

    /// The same on a copy of the real cached model: truncated, then damaged in place; each
    /// time `locate` refuses it by its hash and names the fetch command. The copy's stamp is
    /// the real one's, so only the identity check sends it to the hash.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: BaseModel.smolLM2.cachedURL().path), "the base model is not fetched (scripts/setup)"))
    func aDamagedCopyOfTheRealModelIsRefused() throws {
        let real = BaseModel.smolLM2.cachedURL()
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let environment = ["SAFETUNE_CACHE": dir.path]
        let copy = BaseModel.smolLM2.cachedURL(environment: environment)
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: real, to: copy)
        let stamp = ".\(BaseModel.smolLM2.file).verified"
        let realStamp = real.deletingLastPathComponent().appendingPathComponent(stamp)
        if FileManager.default.fileExists(atPath: realStamp.path) {
            try FileManager.default.copyItem(at: realStamp, to: copy.deletingLastPathComponent().appendingPathComponent(stamp))
        }
        func expectRefused(_ what: String) {
            do {
                _ = try BaseModel.smolLM2.locate(environment: environment)
                Issue.record("a \(what) copy of the base model was accepted")
            } catch {
                #expect(error.description.contains(copy.path) && error.description.contains("scripts/fetch-base-model"), "\(error)")
            }
        }
        try Self.flipByteKeepingModificationTime(copy, at: 1_000_000)
        expectRefused("damaged")
        let handle = try FileHandle(forWritingTo: copy)
        try handle.truncate(atOffset: 4_000_000)
        try handle.close()
        expectRefused("truncated")
    }

    /// Inverts one byte of `url` in place and sets its modification time back to what it was.
    /// A pinned model `content` hashes to, written into a fresh cache folder `dir`.
    static func cachedModel(_ content: Data) throws -> (dir: URL, pinned: BaseModel, url: URL, environment: [String: String]) {
        let dir = try temporaryFolder()
        let environment = ["SAFETUNE_CACHE": dir.path]
        let pinned = BaseModel(name: "test", package: "p", version: "1", member: "m", file: "m.gguf",
                               sha256: TensorDigest.sha256(bytes: content))
        let url = pinned.cachedURL(environment: environment)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try content.write(to: url)
        return (dir, pinned, url, environment)
    }

    static func flipByteKeepingModificationTime(_ url: URL, at offset: UInt64) throws {
        var before = stat()
        #expect(stat(url.path, &before) == 0)
        let handle = try FileHandle(forUpdating: url)
        try handle.seek(toOffset: offset)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data([~byte]))
        try handle.close()
        var times = [timespec(tv_sec: before.st_atim.tv_sec, tv_nsec: before.st_atim.tv_nsec),
                     timespec(tv_sec: before.st_mtim.tv_sec, tv_nsec: before.st_mtim.tv_nsec)]
        #expect(utimensat(AT_FDCWD, url.path, &times, 0) == 0)
    }
}
