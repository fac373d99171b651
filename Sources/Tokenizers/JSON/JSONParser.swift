import Foundation

/// A strict JSON parser over raw bytes: SafeTune's one reader of JSON from outside
/// (tokenizer files, JSONL data). It reports the byte offset of the first error instead of
/// trapping, limits nesting depth and string length, and keeps key order.
public struct JSONParser {
    /// Why parsing stopped: a byte offset and a short reason.
    public struct Failure: Error {
        public let offset: Int
        public let reason: String
    }

    static let maxDepth = 256
    static let maxStringBytes = 1 << 24

    /// A byte for an error message: printable ASCII quoted, anything else in hex, so a
    /// control or line-break byte cannot split the one-line error.
    static func shown(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    private let bytes: [UInt8]
    private var pos = 0

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a whole document; trailing non-whitespace is an error.
    public static func parse(_ data: Data) throws(Failure) -> JSONValue {
        try parse(bytes: [UInt8](data))
    }

    /// Parses a whole document held as bytes.
    public static func parse(bytes: [UInt8]) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.pos != parser.bytes.count {
            throw Failure(offset: parser.pos, reason: "unexpected data after the top-level value")
        }
        return value
    }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: pos, reason: reason) }

    private mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw fail("nesting deeper than \(JSONParser.maxDepth)") }
        guard pos < bytes.count else { throw fail("unexpected end of data") }
        switch bytes[pos] {
        case 0x7B: return try parseObject(depth: depth)
        case 0x5B: return try parseArray(depth: depth)
        case 0x22: return .string(try parseString())
        case 0x74: try expectWord("true"); return .bool(true)
        case 0x66: try expectWord("false"); return .bool(false)
        case 0x6E: try expectWord("null"); return .null
        case 0x2D, 0x30...0x39: return try parseNumber()
        default: throw fail("unexpected character \(JSONParser.shown(bytes[pos]))")
        }
    }

    private mutating func expectWord(_ word: String) throws(Failure) {
        for b in word.utf8 {
            guard pos < bytes.count, bytes[pos] == b else { throw fail("invalid literal, expected '\(word)'") }
            pos += 1
        }
    }

    private mutating func parseObject(depth: Int) throws(Failure) -> JSONValue {
        pos += 1
        var pairs: [(String, JSONValue)] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == 0x7D { pos += 1; return .object(pairs) }
        while true {
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of data in an object") }
            guard bytes[pos] == 0x22 else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == 0x3A else { throw fail("expected ':' after a key") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            pairs.append((key, value))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of data in an object") }
            if bytes[pos] == 0x2C { pos += 1; continue }
            if bytes[pos] == 0x7D { pos += 1; return .object(pairs) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray(depth: Int) throws(Failure) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == 0x5D { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of data in an array") }
            if bytes[pos] == 0x2C { pos += 1; continue }
            if bytes[pos] == 0x5D { pos += 1; return .array(items) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func parseString() throws(Failure) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count, bytes[pos] != 0x22, bytes[pos] != 0x5C, bytes[pos] >= 0x20 { pos += 1 }
        guard pos < bytes.count else { throw fail("unterminated string") }
        if bytes[pos] == 0x22 {
            guard pos - start <= JSONParser.maxStringBytes else { throw fail("string longer than \(JSONParser.maxStringBytes) bytes") }
            guard let s = String(validating: bytes[start..<pos], as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            pos += 1
            return s
        }
        var buffer = [UInt8](bytes[start..<pos])
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            guard buffer.count <= JSONParser.maxStringBytes else { throw fail("string longer than \(JSONParser.maxStringBytes) bytes") }
            let b = bytes[pos]
            if b == 0x22 { pos += 1; break }
            if b < 0x20 { throw fail("control character in a string") }
            if b != 0x5C { buffer.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case 0x22: buffer.append(0x22)
            case 0x5C: buffer.append(0x5C)
            case 0x2F: buffer.append(0x2F)
            case 0x62: buffer.append(0x08)
            case 0x66: buffer.append(0x0C)
            case 0x6E: buffer.append(0x0A)
            case 0x72: buffer.append(0x0D)
            case 0x74: buffer.append(0x09)
            case 0x75:
                var code = try parseHex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard pos + 1 < bytes.count, bytes[pos] == 0x5C, bytes[pos + 1] == 0x75 else {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid code point in \\u escape") }
                buffer.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("invalid escape: backslash followed by \(JSONParser.shown(e))")
            }
        }
        guard let s = String(validating: buffer, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
        return s
    }

    private mutating func parseNumber() throws(Failure) -> JSONValue {
        let start = pos
        var isInteger = true
        if bytes[pos] == 0x2D { pos += 1 }
        var digits = 0
        while pos < bytes.count, (0x30...0x39).contains(bytes[pos]) { pos += 1; digits += 1 }
        guard digits > 0 else { throw fail("invalid number") }
        if pos < bytes.count, bytes[pos] == 0x2E {
            isInteger = false
            pos += 1
            var frac = 0
            while pos < bytes.count, (0x30...0x39).contains(bytes[pos]) { pos += 1; frac += 1 }
            guard frac > 0 else { throw fail("invalid number") }
        }
        if pos < bytes.count, bytes[pos] == 0x65 || bytes[pos] == 0x45 {
            isInteger = false
            pos += 1
            if pos < bytes.count, bytes[pos] == 0x2B || bytes[pos] == 0x2D { pos += 1 }
            var exp = 0
            while pos < bytes.count, (0x30...0x39).contains(bytes[pos]) { pos += 1; exp += 1 }
            guard exp > 0 else { throw fail("invalid number") }
        }
        guard pos - start <= 64 else { throw fail("number literal too long") }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw fail("invalid number") }
        return .double(d)
    }
}
