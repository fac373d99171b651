import Engine
import Foundation
import Testing
@testable import Checkpoints

/// SHA-256 against the FIPS 180-4 example messages, and incremental hashing against
/// one-shot hashing at every block-boundary case.
@Suite struct SHA256Tests {
    static func hex(_ text: String) -> String { TensorDigest.sha256(bytes: Array(text.utf8)) }

    @Test func fipsVectors() {
        #expect(Self.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Self.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(Self.hex(String(repeating: "a", count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries (55, 56, 63, 64 bytes), fed in uneven pieces,
    /// give the one-shot digest.
    @Test func incrementalMatchesOneShot() {
        var rng = SeededRandom(seed: 7)
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let whole = TensorDigest.hex(SHA256.hash(data: bytes))
            var hasher = SHA256()
            var start = 0
            while start < length {
                let end = min(length, start + 1 + Int(rng.next() % 70))
                hasher.update(data: bytes[start..<end])
                start = end
            }
            #expect(TensorDigest.hex(hasher.finalize()) == whole, "length \(length)")
        }
    }

    /// A tensor's digest is that of its float32 little-endian bytes.
    @Test func tensorDigestCoversRawFloats() {
        let values: [Float] = [1, -2, 0.5]
        let t = Tensor(shape: [3], scalars: values)
        let raw = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        #expect(TensorDigest.sha256(t) == TensorDigest.sha256(bytes: raw))
    }
}
