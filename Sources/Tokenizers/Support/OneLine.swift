extension String {
    /// The text with every line break (LF, CR, U+0085, U+2028, …) written as `\u{…}`, so an
    /// error that quotes a file's keys or names stays one line.
    public var oneLine: String {
        var line = ""
        for c in self { line += c.isNewline ? c.unicodeScalars.map { "\\u{\(String($0.value, radix: 16))}" }.joined() : String(c) }
        return line
    }
}
