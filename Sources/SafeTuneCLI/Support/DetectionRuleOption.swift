import Safety

extension DetectionRule {
    /// The names a `--rule` option accepts, for its help and its error.
    static let names = allCases.map(\.rawValue).joined(separator: ", ")

    /// The rule named by a `--rule` option. Parsed in `run()` rather than by the argument
    /// parser so that `verify` turns a bad name into a failed (rejecting) report.
    static func parse(option value: String) throws -> DetectionRule {
        guard let rule = DetectionRule(rawValue: value) else {
            throw VaccineError.invalidSetting(key: "--rule", reason: "must be one of \(names), got '\(value)'")
        }
        return rule
    }
}
