/// The SA-ESS class of an example: is the request benign or malicious?
public enum SafetyLabel: String, Sendable, CaseIterable, Equatable {
    case benign, malicious

    /// Class index for the classification head: benign 0, malicious 1.
    public var classIndex: Int { self == .benign ? 0 : 1 }
}
