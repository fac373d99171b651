import Engine
import Foundation

/// SHA-256 digests of tensors, as lowercase hex.
public enum TensorDigest {
    /// Digest of the raw little-endian float32 bytes of `tensor` (what `/weights/*@sha256` holds).
    public static func sha256(_ tensor: Tensor) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(start: tensor.data, count: 4 * tensor.count))
        return hex(hasher.finalize())
    }

    /// Digest of raw bytes.
    public static func sha256<D: DataProtocol>(bytes: D) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// The canonical digest of a set of weights, independent of the file they came from.
    ///
    /// For each name in byte-wise sorted order it hashes: the UTF-8 name, a 0 byte, the
    /// rank as UInt64 little-endian, each dimension as UInt64 little-endian, then the raw
    /// float32 little-endian elements. Adapter-only checkpoints name their base with this
    /// digest, so a base imported from Hugging Face and the same base re-saved as a
    /// checkpoint match.
    public static func canonical(_ weights: [String: Tensor]) -> String {
        var hasher = SHA256()
        for name in weights.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let t = weights[name]!
            hasher.update(data: Array(name.utf8) + [0])
            var words = [UInt64(t.shape.count).littleEndian] + t.shape.map { UInt64($0).littleEndian }
            words.withUnsafeMutableBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: t.data, count: 4 * t.count))
        }
        return hex(hasher.finalize())
    }

    /// A digest's bytes as lowercase hex.
    public static func hex<S: Sequence>(_ digest: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
