/// Provenance of one data file: where it is, what it hashed to, what it held.
public struct DataFileDigest: Sendable, Equatable {
    /// The file as shown to the user.
    public let file: String
    /// Lowercase hex SHA-256 of its bytes.
    public let sha256: String
    /// Size in bytes.
    public let bytes: Int
    /// Examples read from it.
    public let examples: Int
    /// Examples labelled benign and malicious.
    public let benign: Int, malicious: Int
}
