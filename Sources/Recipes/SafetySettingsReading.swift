import Foundation
import Safety
import Training

// The safety methods' settings read from a recipe's `safety.ssah`, `safety.signal` and
// `safety.gate`, with the recipe's own ranges and cross-key checks, and written back as
// canonical text. The types and their defaults live with their methods in Safety: a key
// the recipe leaves out keeps the type's default.

extension SSAHSettings {
    init(reading r: MappingReader, model: ModelSection) throws {
        self.init()
        enabled = try r.bool("enabled", default: enabled)
        freeze = try r.node("freeze").map { try Self.readFreeze($0, keyPath: r.full("freeze")) } ?? freeze
        route = try r.choice("route", default: route)
        safetyData = try r.path("safety_data")
        utilityData = try r.path("utility_data")
        let s = try r.section("sizes", allowed: RecipeSchema.children(of: "safety.ssah.sizes"))
        sizes = UnitSizes(scu: try s.double("scu", default: sizes.scu, range: .fraction),
                          ucu: try s.double("ucu", default: sizes.ucu, range: .fraction),
                          ru: try s.double("ru", default: sizes.ru, range: .fraction))

        if sizes.scu + sizes.ucu + sizes.ru >= 1 {
            throw RecipeError.conflict(s.location, keyPath: s.path,
                                       message: "scu + ucu + ru must stay below 1 so some complex units remain, got \(sizes.scu + sizes.ucu + sizes.ru)")
        }
        if !enabled, freeze != .none {
            throw RecipeError.conflict(r.location(of: "freeze"), keyPath: r.full("freeze"),
                                       message: "'\(freeze)' needs safety.ssah.enabled: true")
        }
        if !enabled, route != .all {
            throw RecipeError.conflict(r.location(of: "route"), keyPath: r.full("route"),
                                       message: "'\(route.rawValue)' needs safety.ssah.enabled: true")
        }
        if route == .ruPlusCU, freeze == .scuPlusCU {
            throw RecipeError.conflict(r.location(of: "route"), keyPath: r.full("route"),
                                       message: "'ru+cu' routes updates into complex units that freeze 'scu+cu' freezes")
        }
        if enabled, !model.baseIsCheckpoint, safetyData == nil || utilityData == nil {
            let missing = safetyData == nil ? "safety_data" : "utility_data"
            throw RecipeError.conflict(r.location(of: "enabled"), keyPath: r.full(missing),
                                       message: "needed to score units: only a .h5 base checkpoint can supply a stored unit map")
        }
    }

    static func readFreeze(_ node: RecipeNode, keyPath: String) throws -> Freeze {
        guard case let .scalar(text, _) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "one of \(Freeze.spellings.joined(separator: ", "))",
                                        got: node.summary)
        }
        switch text {
        case "none": return .none
        case "scu": return .scu
        case "scu+cu": return .scuPlusCU
        default:
            let prefix = "scu+cu_top:"
            if text.hasPrefix(prefix) {
                let number = String(text.dropFirst(prefix.count))
                guard let f = Double(number), ValueRange.fraction.contains(f) else {
                    throw RecipeError.outOfRange(node.location, keyPath: keyPath, value: "'\(number)' in '\(text)'",
                                                 range: "a fraction, \(ValueRange.fraction)")
                }
                return .scuPlusTopCU(f)
            }
            throw RecipeError.invalidChoice(node.location, keyPath: keyPath, value: text, choices: Freeze.spellings,
                                            suggestion: EditDistance.suggestion(for: text, among: ["none", "scu", "scu+cu"]))
        }
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("freeze", .string(freeze.description)), ("route", .string(route.rawValue)),
                 ("safety_data", safetyData.map { .string($0.relative(to: root)) } ?? .null),
                 ("utility_data", utilityData.map { .string($0.relative(to: root)) } ?? .null),
                 ("sizes", .object([("scu", .double(sizes.scu)), ("ucu", .double(sizes.ucu)), ("ru", .double(sizes.ru))]))])
    }
}

extension SignalSettings {
    init(reading r: MappingReader) throws {
        self.init()
        enabled = try r.bool("enabled", default: enabled)
        lambda = try r.double("lambda", default: lambda, range: ValueRange(lower: 0, lowerInclusive: false, upper: 10))
        maliciousWeight = try r.double("malicious_weight", default: maliciousWeight, range: ValueRange(lower: 0, lowerInclusive: false, upper: 1000))
        pattern = try r.choice("pattern", default: pattern)
        clsToken = try r.string("cls_token", default: clsToken)
        answerProbes = try r.bool("answer_probes", default: answerProbes)
        calibration = try r.path("calibration")
        overRefusalBudget = try r.double("over_refusal_budget", default: overRefusalBudget,
                                         range: ValueRange(lower: 0, upper: 1, upperInclusive: false))
        if answerProbes, !enabled {
            throw RecipeError.conflict(r.location(of: "answer_probes"), keyPath: r.full("answer_probes"),
                                       message: "trains the guard of a safety signal; set safety.signal.enabled, or drop it (--set safety.signal.answer_probes=false)")
        }
        if calibration != nil, !enabled {
            throw RecipeError.conflict(r.location(of: "calibration"), keyPath: r.full("calibration"),
                                       message: "calibrates the guard of a safety signal; set safety.signal.enabled, or drop it (--set safety.signal.calibration=null)")
        }
    }

    // The calibration keys and answer_probes appear only when set, so recipes written
    // before them keep their canonical text.
    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("lambda", .double(lambda)), ("malicious_weight", .double(maliciousWeight)),
                 ("pattern", .string(pattern.rawValue)), ("cls_token", .string(clsToken))]
                + (answerProbes ? [("answer_probes", .bool(true))] : [])
                + (calibration.map { [("calibration", .string($0.relative(to: root))),
                                      ("over_refusal_budget", .double(overRefusalBudget))] } ?? []))
    }
}

extension GateSettings {
    init(reading r: MappingReader) throws {
        self.init()
        enabled = try r.bool("enabled", default: enabled)
        onReject = try r.choice("on_reject", default: onReject)
        variants = try r.int("variants", default: variants, range: .closed(1, 64))
        steps = try r.optionalInt("steps", range: .closed(1, 100_000))
        kind = try r.choice("kind", default: kind)
        rule = try r.choice("rule", default: rule)
        variantsFrom = try r.choice("variants_from", default: variantsFrom)
        tau = try r.double("tau", default: tau, range: .fraction)
        reference = try r.path("reference")
        cleanData = try r.path("clean_data")
        probes = try r.path("probes")
        scanCalibrations = try r.int("scan_calibrations", default: scanCalibrations, range: .closed(2, 16))
        scanCalibrationFile = try r.path("scan_calibration")
        direction = try r.bool("direction", default: direction)
        directionProbes = try r.path("direction_probes")
        if !direction, directionProbes != nil {
            throw RecipeError.conflict(r.location(of: "direction_probes"), keyPath: r.full("direction_probes"),
                                       message: "measures directions for the direction stage, which direction: false turns off")
        }
        directionData = try r.path("direction_data")
        directionCalibrations = try r.int("direction_calibrations", default: directionCalibrations, range: .closed(2, 16))
        directionSamples = try r.optionalInt("direction_samples", range: .closed(1, 1_000_000))
        directionMaxSteps = try r.optionalInt("direction_max_steps", range: .closed(1, 1_000_000))
        directionCalibrationFile = try r.path("direction_calibration")
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        func path(_ p: RecipePath?) -> CanonicalValue { p.map { .string($0.relative(to: root)) } ?? .null }
        var fields: [(String, CanonicalValue)] = [
            ("enabled", .bool(enabled)), ("on_reject", .string(onReject.rawValue)), ("variants", .int(variants)),
            ("steps", steps.map { .int($0) } ?? .null), ("rule", .string(rule.rawValue)), ("variants_from", .string(variantsFrom.rawValue)),
            ("tau", .double(tau)), ("reference", path(reference)), ("clean_data", path(cleanData)), ("probes", path(probes)),
            ("scan_calibrations", .int(scanCalibrations)), ("scan_calibration", path(scanCalibrationFile)),
            ("direction", .bool(direction)), ("direction_probes", path(directionProbes)), ("direction_data", path(directionData)),
            ("direction_calibrations", .int(directionCalibrations)), ("direction_calibration", path(directionCalibrationFile)),
        ]
        // Written only when not the default, so older recipes keep their text and hash.
        if kind != .full { fields.append(("kind", .string(kind.rawValue))) }
        if let directionSamples { fields.append(("direction_samples", .int(directionSamples))) }
        if let directionMaxSteps { fields.append(("direction_max_steps", .int(directionMaxSteps))) }
        return .object(fields)
    }
}

extension CleanData {
    /// A recipe's clean data: `safety.gate.clean_data` when set, otherwise its training files
    /// not labelled malicious.
    public static func load(recipe: Recipe) throws -> [CleanSample] {
        if let path = recipe.safety.gate.cleanData { return try load(contentsOf: path.url) }
        return try load(recipe.data.train.filter { $0.label != .malicious })
    }

    /// What purification fine-tunes its variants and restores fluency on: the recipe's clean
    /// data and, when `safety.gate.direction_data` names it, that trusted data with its
    /// refusals of harmful requests. Restoring on benign answers alone left a planted
    /// compliance in place (docs/experiments/bdvax-smollm2.md).
    public static func restoration(recipe: Recipe) throws -> [CleanSample] {
        let trusted = try recipe.safety.gate.directionData.map { try load(contentsOf: $0.url, includingMalicious: true) } ?? []
        return try load(recipe: recipe) + trusted
    }
}
