/// The GPT-2 reversible byte ↔ printable character mapping used by byte-level BPE:
/// printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
public enum ByteLevel {
    /// Character for each byte value.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Byte for each mapped character (keyed by scalar value).
    public static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// Maps text to its byte-level form.
    public static func encode(_ text: String) -> String {
        var view = String.UnicodeScalarView()
        for b in text.utf8 { view.append(byteToScalar[Int(b)]) }
        return String(view)
    }

    /// Appends the byte-level form of `scalars` to `out`.
    static func encode(_ scalars: ArraySlice<Unicode.Scalar>, into out: inout [Unicode.Scalar]) {
        for s in scalars {
            let v = s.value
            if v < 0x80 {
                out.append(byteToScalar[Int(v)])
            } else {
                for b in String(Character(s)).utf8 { out.append(byteToScalar[Int(b)]) }
            }
        }
    }
}
