import Engine

/// Seeded structure-blind mutations of byte strings: bit flips, byte edits, boundary
/// integers (binary and decimal), inserts, deletes, truncations, chunk copies, splices
/// with other seeds, and dictionary tokens (repeated, to build nesting bombs).
///
/// The same seed gives the same sequence of inputs, so a failure is replayable from
/// `(seed, iteration)` alone.
public struct Mutator {
    /// Inputs are cut to this size so one mutant cannot make the run slow by sheer size.
    public var maxSize: Int
    /// Format tokens worth inserting (`{`, `null`, `: `, `- `, …).
    public var dictionary: [[UInt8]]
    private var rng: SeededRandom

    /// Boundary values written as binary integers of 1, 2, 4 or 8 bytes.
    static let boundaryIntegers: [UInt64] = [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000,
        0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max, UInt64.max - 1, 16, 64, 4096,
    ]
    /// Boundary values written as decimal text, for JSON, YAML and config files.
    static let boundaryNumbers: [String] = [
        "0", "-0", "1", "-1", "2", "255", "256", "65535", "65536", "2147483647", "2147483648", "-2147483649",
        "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
        "4611686018427387904", "1e308", "1e309", "-1e309", "1e-400", "0.5", "1.5e10", "NaN", "Infinity", "0x10", "1_000",
    ]

    /// A mutator whose choices follow `seed`.
    public init(seed: UInt64, dictionary: [[UInt8]] = [], maxSize: Int = 1 << 20) {
        rng = SeededRandom(seed: seed)
        self.dictionary = dictionary
        self.maxSize = maxSize
    }

    /// A random integer in `0..<n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

    /// One to four stacked mutations of `input`; `others` feeds splices.
    public mutating func mutate(_ input: [UInt8], others: [[UInt8]]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) { bytes = mutateOnce(bytes, others: others) }
        if bytes.count > maxSize { bytes.removeLast(bytes.count - maxSize) }
        return bytes
    }

    private mutating func mutateOnce(_ input: [UInt8], others: [[UInt8]]) -> [UInt8] {
        var b = input
        let n = b.count
        switch below(13) {
        case 0 where n > 0:
            b[below(n)] ^= UInt8(1) << UInt8(below(8))
        case 1 where n > 0:
            b[below(n)] = UInt8(truncatingIfNeeded: rng.next())
        case 2 where n > 0:
            let special: [UInt8] = [0, 0xFF, 0x7F, 0x80, 0x22, 0x7B, 0x7D, 0x5B, 0x5D, 0x3A, 0x2C, 0x0A, 0x5C, 0x20, 0x2D, 0x23, 0x26, 0x2A]
            b[below(n)] = special[below(special.count)]
        case 3 where n > 0:
            // A boundary integer, little- or big-endian, over 1, 2, 4 or 8 bytes.
            let width = [1, 2, 4, 8][below(4)]
            var value = Self.boundaryIntegers[below(Self.boundaryIntegers.count)]
            if below(2) == 0 { value = value.byteSwapped >> UInt64(64 - 8 * width) }
            let at = below(n)
            for k in 0..<width where at + k < n { b[at + k] = UInt8(truncatingIfNeeded: value >> UInt64(8 * k)) }
        case 4:
            let count = 1 + below(16)
            let at = below(n + 1)
            b.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 5 where n > 0:
            let at = below(n)
            b.removeSubrange(at..<min(n, at + 1 + below(64)))
        case 6 where n > 0:
            b.removeLast(n - below(n))
        case 7 where !others.isEmpty:
            let other = others[below(others.count)]
            b = Array(b.prefix(below(n + 1))) + other.suffix(below(other.count + 1))
        case 8 where n > 1:
            // Copy a chunk to another place (duplicated fields, repeated records).
            let from = below(n), length = 1 + below(min(256, n - from))
            b.insert(contentsOf: b[from..<from + length], at: below(n + 1))
        case 9 where !dictionary.isEmpty:
            b.insert(contentsOf: dictionary[below(dictionary.count)], at: below(n + 1))
        case 10:
            // Replace a decimal number (or insert one) with a boundary value.
            let number = Array(Self.boundaryNumbers[below(Self.boundaryNumbers.count)].utf8)
            let digits = b.indices.filter { b[$0] >= 0x30 && b[$0] <= 0x39 }
            if digits.isEmpty {
                b.insert(contentsOf: number, at: below(n + 1))
            } else {
                var start = digits[below(digits.count)], end = start
                while start > 0, b[start - 1] >= 0x30 && b[start - 1] <= 0x39 || b[start - 1] == 0x2D || b[start - 1] == 0x2E { start -= 1 }
                while end < n, b[end] >= 0x30 && b[end] <= 0x39 || b[end] == 0x2E || b[end] == 0x65 { end += 1 }
                b.replaceSubrange(start..<end, with: number)
            }
        case 11 where !dictionary.isEmpty:
            // Many copies of one token: deep nesting, long keys, huge arrays.
            let token = dictionary[below(dictionary.count)]
            let copies = [8, 64, 300, 600, 2000, 10_000][below(6)]
            b.insert(contentsOf: Array([[UInt8]](repeating: token, count: copies).joined()), at: below(n + 1))
        case 12 where n > 0:
            // Swap two bytes (reordered fields, swapped digits).
            let i = below(n), j = below(n)
            b.swapAt(i, j)
        default:
            b.append(UInt8(truncatingIfNeeded: rng.next()))
        }
        return b
    }
}
