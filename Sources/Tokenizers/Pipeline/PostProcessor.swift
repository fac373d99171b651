/// A post-processor from the `post_processor` section: adds special tokens around a
/// single sequence when `addSpecialTokens` is set.
indirect enum PostProcessor: Sendable {
    /// Ids before and after the sequence (TemplateProcessing, Bert, Roberta).
    case template(prefix: [Int], suffix: [Int])
    /// Changes offsets only; ids are untouched.
    case byteLevel
    case sequence([PostProcessor])

    static func parse(_ node: JSONNode) throws(TokenizerError) -> PostProcessor {
        let type = try node.typeName()
        switch type {
        case "ByteLevel": return .byteLevel
        case "TemplateProcessing":
            // Named special tokens with their ids.
            var named: [String: [Int]] = [:]
            if let specials = try node.optional("special_tokens") {
                for (key, entry) in try specials.object() {
                    named[key] = try entry.required("ids").array().map { (n) throws(TokenizerError) in try n.tokenId() }
                }
            }
            var prefix: [Int] = [], suffix: [Int] = []
            var seenSequence = false
            for item in try node.required("single").array() {
                if let special = try item.optional("SpecialToken") {
                    let idNode = try special.required("id")
                    let name = try idNode.string()
                    guard let ids = named[name] else { throw idNode.invalid("'\(name)' is not in special_tokens") }
                    if seenSequence { suffix += ids } else { prefix += ids }
                } else if try item.optional("Sequence") != nil {
                    guard !seenSequence else { throw item.invalid("the single template has two sequences") }
                    seenSequence = true
                } else {
                    throw item.invalid("expected SpecialToken or Sequence")
                }
            }
            guard seenSequence else { throw try node.required("single").invalid("the template has no sequence") }
            return .template(prefix: prefix, suffix: suffix)
        case "BertProcessing", "RobertaProcessing":
            func pairId(_ key: String) throws(TokenizerError) -> Int {
                let pair = try node.required(key).array()
                guard pair.count == 2 else { throw try node.required(key).invalid("expected [token, id]") }
                return try pair[1].tokenId()
            }
            return .template(prefix: [try pairId("cls")], suffix: [try pairId("sep")])
        case "Sequence":
            return .sequence(try node.required("processors").array().map { (n) throws(TokenizerError) in try PostProcessor.parse(n) })
        default:
            throw try node.required("type").unsupported("post-processor '\(type)'")
        }
    }

    /// Wraps `ids` with the processor's special tokens.
    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .byteLevel: return ids
        case let .template(prefix, suffix): return prefix + ids + suffix
        case .sequence(let list): return list.reduce(ids) { $1.process($0) }
        }
    }

    /// The first id added before the sequence, and the last one added after it.
    var boundaryIds: (first: Int?, last: Int?) {
        switch self {
        case .byteLevel: return (nil, nil)
        case let .template(prefix, suffix): return (prefix.first, suffix.last)
        case .sequence(let list):
            var result: (first: Int?, last: Int?) = (nil, nil)
            for p in list {
                let b = p.boundaryIds
                result = (result.first ?? b.first, b.last ?? result.last)
            }
            return result
        }
    }
}
