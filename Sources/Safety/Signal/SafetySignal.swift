import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers

/// The SA-ESS explicit safety signal: a `[CLS]` token placed at position 0 (before BOS)
/// and a linear head on its final hidden state that predicts benign (0) or malicious (1).
///
/// Stored in a checkpoint's `/signal` group: tensors `head.weight` `[2, d]` and
/// `head.bias` `[2]`, attributes `cls_token` (text), `cls_token_id` and `pattern`, and once
/// the guard is calibrated for this head, `guard_threshold` with `guard_calibration` (the
/// `GuardCalibration` record as JSON).
public final class SafetySignal {
    /// The special token's text.
    public let clsToken: String
    /// Its id in the (grown) vocabulary.
    public let clsTokenId: Int
    /// Which positions the CLS token sees and is seen by.
    public let pattern: SignalPattern
    /// Head weights `[2, d]`, row 0 benign, row 1 malicious.
    public let weight: Variable
    /// Head bias `[2]`.
    public let bias: Variable
    /// How this head's guard was calibrated (nil: never; guarded decoding then uses
    /// `GuardOptions.uncalibratedThreshold`). Training the head makes it stale, so a
    /// training run drops it and calibrates again when its recipe says how.
    public var calibration: GuardCalibration?

    /// The attribute that holds the guard's `GuardCalibration` record.
    static let calibrationKey = "guard_calibration"

    /// Whether the head stored in `group` carries a calibrated guard threshold.
    public static func isCalibrated(_ group: TensorGroup) -> Bool { group.attributes[calibrationKey] != nil }

    /// A fresh head for hidden size `hiddenSize`: normal(0, 0.02) weights, zero bias.
    public init(clsToken: String, clsTokenId: Int, hiddenSize: Int, pattern: SignalPattern = .sft, seed: UInt64 = 0) {
        self.clsToken = clsToken
        self.clsTokenId = clsTokenId
        self.pattern = pattern
        let w = Tensor(zeros: [2, hiddenSize])
        var rng = SeededRandom(seed: seed)
        rng.fillNormal(w, std: 0.02)
        weight = Variable(w, requiresGrad: true, name: "signal.head.weight")
        bias = Variable(Tensor(zeros: [2]), requiresGrad: true, name: "signal.head.bias")
    }

    /// The signal stored in a checkpoint's `/signal` group.
    public init(group: TensorGroup) throws(SignalError) {
        guard let token = group.attributes["cls_token"]?.stringValue else {
            throw .invalidGroup(key: "cls_token", reason: "is missing or not a string")
        }
        guard let id = group.attributes["cls_token_id"]?.intValue, id >= 0, id < Int64(Int32.max) else {
            throw .invalidGroup(key: "cls_token_id", reason: "is missing or not a valid token id")
        }
        let patternName = group.attributes["pattern"]?.stringValue ?? SignalPattern.sft.rawValue
        guard let pattern = SignalPattern(rawValue: patternName) else {
            throw .invalidGroup(key: "pattern", reason: "is '\(patternName)', not sft or pretrain")
        }
        guard let w = group.tensors["head.weight"], w.rank == 2, w.shape[0] == 2, w.shape[1] > 0 else {
            throw .invalidGroup(key: "head.weight", reason: "is missing or not of shape [2, d]")
        }
        guard let b = group.tensors["head.bias"], b.shape == [2] else {
            throw .invalidGroup(key: "head.bias", reason: "is missing or not of shape [2]")
        }
        clsToken = token
        clsTokenId = Int(id)
        self.pattern = pattern
        weight = Variable(w.copy(), requiresGrad: true, name: "signal.head.weight")
        bias = Variable(b.copy(), requiresGrad: true, name: "signal.head.bias")
        if let text = group.attributes[Self.calibrationKey]?.stringValue {
            guard let record = try? JSONDecoder().decode(GuardCalibration.self, from: Data(text.utf8)),
                  record.threshold > 0, record.threshold <= 1 else {
                throw .invalidGroup(key: Self.calibrationKey, reason: "is not a guard calibration with a threshold in (0, 1]")
            }
            calibration = record
        }
    }

    /// The checkpoint section (copies of the current head).
    public var tensorGroup: TensorGroup {
        var attributes: [String: AttributeValue] = ["cls_token": .string(clsToken), "cls_token_id": .int(Int64(clsTokenId)),
                                                    "pattern": .string(pattern.rawValue)]
        if let calibration {
            attributes["guard_threshold"] = .double(GuardCalibration.decimal(calibration.threshold))
            attributes[Self.calibrationKey] = .string(calibration.json)
        }
        return TensorGroup(tensors: ["head.weight": weight.value.copy(), "head.bias": bias.value.copy()], attributes: attributes)
    }

    /// The head's trainable parameters.
    public var namedParameters: [(String, Variable)] { [(weight.name, weight), (bias.name, bias)] }

    /// Hidden size the head reads.
    public var hiddenSize: Int { weight.shape[1] }

    /// Checks that this head fits `model`: CLS id in its vocabulary, width its hidden size.
    public func validate(for model: TransformerModel) throws(SignalError) {
        if clsTokenId >= model.config.vocabSize { throw .tokenOutOfRange(id: clsTokenId, vocabSize: model.config.vocabSize) }
        if hiddenSize != model.config.hiddenSize { throw .widthMismatch(head: hiddenSize, model: model.config.hiddenSize) }
    }

    /// Class logits `[N, 2]` for CLS hidden states `[N, d]`.
    public func logits(tape: Tape, hidden: Variable) -> Variable {
        tape.linear(hidden, weight, bias: bias)
    }

    /// P(malicious) for one CLS hidden state (`d` values): softmax of the two logits.
    public func maliciousProbability(_ hidden: UnsafePointer<Float>) -> Float {
        let d = hiddenSize, w = weight.value.data, b = bias.value.data
        var z0 = b[0], z1 = b[1]
        for j in 0..<d {
            z0 += w[j] * hidden[j]
            z1 += w[d + j] * hidden[j]
        }
        return 1 / (1 + expf(z0 - z1))
    }

    /// Adds a signal to a model that lacks one: the tokenizer gains `clsToken` as a special
    /// token (or keeps it when present), the model's vocabulary grows to cover it (new rows
    /// start at the mean embedding, so old tokens keep their logits), and a fresh head is made.
    public static func adding(to model: TransformerModel, tokenizer: Tokenizer, clsToken: String = "[CLS]",
                              pattern: SignalPattern = .sft, seed: UInt64 = 0,
                              trainable: Bool = true) throws(SignalError) -> (model: TransformerModel, tokenizer: Tokenizer, signal: SafetySignal) {
        if clsToken.isEmpty || clsToken.utf8.count > 256 { throw .model("CLS token '\(clsToken)' must be 1 to 256 bytes") }
        let (grown, id) = tokenizer.adding(specialToken: clsToken)
        var out = model
        let needed = max(model.config.vocabSize, id + 1)
        if needed != model.config.vocabSize {
            do { out = try model.resizingVocabulary(to: needed, trainable: trainable) } catch { throw .model(error.description) }
        }
        let signal = SafetySignal(clsToken: clsToken, clsTokenId: id, hiddenSize: model.config.hiddenSize, pattern: pattern, seed: seed)
        return (out, grown, signal)
    }
}

/// Which positions the CLS token reads and which read it.
public enum SignalPattern: String, Sendable, CaseIterable, Codable {
    /// SFT: CLS reads the prompt (and itself); prompt tokens never read CLS; answer tokens do.
    case sft
    /// Pre-training: CLS reads every token; no token reads CLS.
    case pretrain
}
