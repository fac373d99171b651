import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers

/// Runs a fine-tuning (`Setup`, which a recipe maps onto): LoRA or full fine-tuning of a
/// base model (or training from scratch), with gradient accumulation, clipping, a
/// learning-rate schedule, periodic evaluation, atomic checkpoints and exact resume.
///
/// Setting up and running are separate so that the safety methods can act in between:
/// SSAH masks units of `model` and `adapters` after `init` and before `run`.
///
/// Determinism: batch order, adapter initialisation and dropout all derive from the
/// setup's seed and the step number, so the same setup on the same machine gives the same
/// weights, and a run interrupted and resumed ends where an uninterrupted one does.
public final class Trainer {
    /// How to run (what to train is the setup's business).
    public struct Parameters: Sendable {
        /// Continue from the newest checkpoint in the output folder, if there is one.
        public var resume = false
        /// Stop after this many completed steps, saving a checkpoint (a deliberate interruption).
        public var stopAfterStep: Int?
        public init() {}
    }

    public let setup: Setup
    public let parameters: Parameters
    public let bundle: ModelBundle
    public let tokenizer: Tokenizer
    public let objective: TrainingObjective
    /// Renders and tokenizes examples with the recipe's chat template.
    public let encoder: ExampleEncoder
    /// LoRA adapters by module path (empty for full fine-tuning).
    public let adapters: [(String, LoRAAdapter)]
    /// Where checkpoints, metrics and the report go.
    public var outputDirectory: URL { setup.outputDirectory }

    public var model: TransformerModel { bundle.model }

    private let batcher: Batcher
    private let evalExamples: [EncodedExample]
    private let trainable: [Variable]
    private let optimizer: any Optimizer
    private let schedule: LearningRateSchedule
    private let totalSteps: Int
    private let microBatches: Int

    /// Attaches adapters to `bundle`'s model, encodes the data and builds the optimizer.
    /// Nothing is trained yet.
    public init(setup: Setup, bundle: ModelBundle, objective: TrainingObjective = LanguageModelObjective(),
                parameters: Parameters = .init()) throws {
        self.setup = setup
        self.parameters = parameters
        self.objective = objective
        Self.setThreads(setup.threads)
        self.bundle = bundle
        guard let tokenizer = bundle.tokenizer else { throw ModelBundleError.tokenizerRequired(path: bundle.source.path) }
        self.tokenizer = tokenizer

        switch setup.adapters {
        case let .lora(rank, alpha, dropout, targets):
            adapters = try LoRA.attach(to: bundle.model, LoRA.Parameters(rank: rank, alpha: alpha, dropout: dropout, seed: setup.seed),
                                       where: targets)
            trainable = adapters.flatMap { $0.1.namedParameters.map(\.1) } + objective.namedParameters.map(\.1)
        case .full:
            adapters = []
            trainable = bundle.model.namedParameters.map(\.1).filter(\.requiresGrad) + objective.namedParameters.map(\.1)
        }
        guard !trainable.isEmpty else { throw TrainerError.nothingToTrain }

        encoder = ExampleEncoder(tokenizer: tokenizer, template: try ChatTemplate.named(setup.template, tokenizer: tokenizer))
        let pad = Int32(tokenizer.eosTokenId ?? 0)
        let encoded = setup.train.examples.map(encoder.encode)
        // A labelled prompt without an answer is there for the signal; dropping it silently
        // would train a different run than the data describes.
        if let i = encoded.indices.first(where: { encoded[$0].trainedTokens == 0 && encoded[$0].safetyClass != nil && !objective.learns(from: encoded[$0]) }) {
            throw TrainerError.signalOnlyExample(origin: setup.train.examples[i].origin)
        }
        let train = encoded.filter(objective.learns(from:))
        guard !train.isEmpty else { throw TrainerError.noTrainableTokens }
        let seqLen = min(setup.seqLen, bundle.model.config.maxPositions)
        batcher = Batcher(examples: train, batchSize: setup.batchSize, seqLen: seqLen,
                          packing: setup.packing, groupByLength: setup.groupByLength, seed: setup.seed, padId: pad)
        evalExamples = setup.eval.examples.map(encoder.encode).filter { $0.trainedTokens > 0 }

        microBatches = setup.gradAccum
        switch setup.length {
        case let .steps(n): totalSteps = n
        case let .epochs(e): totalSteps = max(1, (e * batcher.batchesPerEpoch + microBatches - 1) / microBatches)
        }
        switch setup.optimizer {
        case let .adamw(beta1, beta2, eps, weightDecay):
            optimizer = AdamW(parameters: trainable, learningRate: setup.learningRate, beta1: beta1, beta2: beta2,
                              eps: eps, weightDecay: weightDecay, excludeFromDecay: Trainer.isNormOrBias)
        case let .sgd(momentum, weightDecay):
            optimizer = SGD(parameters: trainable, learningRate: setup.learningRate, momentum: momentum, weightDecay: weightDecay)
        }
        schedule = setup.schedule
    }

    /// `threads` compute threads, 0 for every core.
    public static func setThreads(_ threads: Int) {
        Parallel.setThreads(threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Biases and norm weights take no weight decay.
    static func isNormOrBias(_ v: Variable) -> Bool {
        v.name.hasSuffix(".bias") || v.name.contains("norm") || v.name.contains(".ln_")
    }

    /// The run's shape.
    public var plan: TrainingPlan {
        TrainingPlan(totalSteps: totalSteps, startStep: 0, trainExamples: batcher.examples.count,
                     evalExamples: evalExamples.count, truncatedExamples: batcher.truncatedCount,
                     trainableParameters: trainable.reduce(0) { $0 + $1.value.count },
                     totalParameters: model.parameterCount + objective.namedParameters.reduce(0) { $0 + $1.1.value.count },
                     microBatchesPerStep: microBatches)
    }

    // MARK: - Running

    /// Trains to the end (or to `stopAfterStep`), reporting progress; returns the summary.
    /// The final checkpoint is `model.h5` in the output folder.
    @discardableResult
    public func run(progress: (TrainingProgress) -> Void = { _ in }) throws -> TrainingSummary {
        let fm = FileManager.default
        let periodic = outputDirectory.appendingPathComponent("checkpoints")
        try fm.createDirectory(at: periodic, withIntermediateDirectories: true)
        var startStep = 0
        if parameters.resume, let latest = try Self.latestCheckpoint(in: periodic) {
            startStep = try restore(from: latest)
        }
        var plan = self.plan
        plan.startStep = startStep
        progress(.started(plan))
        let log = try MetricsLog(url: outputDirectory.appendingPathComponent("metrics.jsonl"), keepingStepsUpTo: startStep)

        let tape = Tape()
        let seed = setup.seed
        let started = Date()
        var tokensSeen = 0
        var lastLoss = Double.nan, evalLoss: Double?
        let stop = min(totalSteps, parameters.stopAfterStep ?? totalSteps)
        for step in startStep..<stop {
            optimizer.learningRate = setup.learningRate * schedule.multiplier(step: step, totalSteps: totalSteps)
            for (i, (_, adapter)) in adapters.enumerated() { adapter.reseedDropout(seed &+ UInt64(step) &* 1_000_003 &+ UInt64(i)) }
            var lossSum = 0.0, tokens = 0
            var metricSums: [String: Double] = [:]
            for micro in 0..<microBatches {
                let k = step * microBatches + micro
                let batch = batcher.batch(epoch: k / batcher.batchesPerEpoch, index: k % batcher.batchesPerEpoch)
                let (loss, metrics) = objective.loss(tape: tape, model: model, batch: batch)
                lossSum += Double(loss.value[flat: 0])
                for (key, v) in metrics { metricSums[key, default: 0] += Double(v) }
                tape.backward(microBatches > 1 ? tape.scale(loss, 1 / Float(microBatches)) : loss)
                tape.reset()
                tokens += batch.tokenCount
            }
            let norm = clipGradNorm(trainable, maxNorm: setup.gradClip > 0 ? setup.gradClip : .infinity)
            optimizer.step()
            optimizer.zeroGrad()

            tokensSeen += tokens
            lastLoss = lossSum / Double(microBatches)
            let elapsed = Date().timeIntervalSince(started)
            let done = step + 1 - startStep
            let report = StepReport(
                step: step + 1, totalSteps: totalSteps, loss: lastLoss, learningRate: Double(optimizer.learningRate),
                gradNorm: Double(norm), tokens: tokens, tokensPerSecond: Double(tokensSeen) / max(elapsed, 1e-9),
                elapsedSeconds: elapsed, etaSeconds: elapsed / Double(done) * Double(stop - step - 1),
                metrics: metricSums.mapValues { $0 / Double(microBatches) })
            try log.append(report)
            progress(.step(report))

            let completed = step + 1
            if setup.evalEvery > 0, completed % setup.evalEvery == 0, completed < totalSteps {
                let metrics = try evaluate(step: completed, tape: tape)
                evalLoss = metrics["eval_loss"] ?? evalLoss
                try log.append(step: completed, metrics: metrics)
                progress(.evaluated(step: completed, metrics: metrics))
            }
            if setup.saveEvery > 0, completed % setup.saveEvery == 0 || completed == stop, completed < totalSteps {
                let url = periodic.appendingPathComponent(String(format: "step-%08d.h5", completed))
                try checkpoint(step: completed, includeOptimizer: true).write(to: url)
                try pruneCheckpoints(in: periodic)
                progress(.saved(step: completed, url: url))
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        let finalURL = outputDirectory.appendingPathComponent(stop == totalSteps ? "model.h5" : "interrupted.h5")
        if stop == totalSteps {
            let metrics = try evaluate(step: totalSteps, tape: tape)
            evalLoss = metrics["eval_loss"] ?? evalLoss
            try log.append(step: totalSteps, metrics: metrics)
            progress(.evaluated(step: totalSteps, metrics: metrics))
            try checkpoint(step: totalSteps, includeOptimizer: false).write(to: finalURL)
            if !adapters.isEmpty {
                try checkpoint(step: totalSteps, includeOptimizer: false).adapterOnly(baseVocabularySize: bundle.checkpoint.config.vocabSize)
                    .write(to: outputDirectory.appendingPathComponent(Self.adapterFileName))
            }
        } else if setup.saveEvery == 0 {
            // An interrupted run without periodic saves still leaves a resumable checkpoint.
            try checkpoint(step: stop, includeOptimizer: true)
                .write(to: periodic.appendingPathComponent(String(format: "step-%08d.h5", stop)))
        }
        progress(.saved(step: stop, url: finalURL))
        let summary = TrainingSummary(steps: stop, finalLoss: lastLoss, evalLoss: evalLoss, checkpoint: finalURL.path,
                                      seconds: elapsed, tokensPerSecond: Double(tokensSeen) / max(elapsed, 1e-9))
        progress(.finished(summary))
        return summary
    }

    /// The adapter-only checkpoint a finished LoRA run writes beside `model.h5`.
    public static let adapterFileName = "adapters.h5"

    /// Mean loss over up to `evalMaxBatches` evaluation batches.
    public func evaluate(step: Int, tape: Tape = Tape()) throws -> [String: Double] {
        var metrics: [String: Double] = [:]
        if !evalExamples.isEmpty {
            let eval = Batcher(examples: evalExamples, batchSize: setup.batchSize, seqLen: batcher.seqLen,
                               packing: false, seed: 0, padId: batcher.padId)
            let count = min(eval.batchesPerEpoch, setup.evalMaxBatches > 0 ? setup.evalMaxBatches : .max)
            var sum = 0.0
            tape.withoutGrad {
                for i in 0..<count {
                    sum += Double(objective.loss(tape: tape, model: model, batch: eval.batch(epoch: 0, index: i)).loss.value[flat: 0])
                    tape.reset()
                }
            }
            metrics["eval_loss"] = sum / Double(count)
        }
        return metrics
    }

    // MARK: - Checkpoints

    /// The run's state at `step` as a checkpoint: weights (the base, for LoRA), adapters,
    /// the objective's parameters, optionally the optimizer, and provenance.
    public func checkpoint(step: Int, includeOptimizer: Bool) -> Checkpoint {
        var optimizerGroup: TensorGroup?
        if includeOptimizer {
            let state = optimizer.exportState()
            optimizerGroup = TensorGroup(tensors: state.tensors, attributes: [
                "kind": .string(state.kind), "step": .int(Int64(state.step)), "trainer_step": .int(Int64(step))])
        }
        let parent = bundle.checkpoint.weights.isEmpty ? nil : bundle.checkpoint.weightsSHA256
        let provenance = Provenance(
            recipe: setup.recipe?.text, recipeSHA256: setup.recipe?.sha256,
            dataSHA256: Dictionary(setup.train.files.map { ($0.file, $0.sha256) }, uniquingKeysWith: { a, _ in a }),
            parentSHA256: parent, seed: Int64(setup.seed), steps: Int64(step))
        return Checkpoint(
            config: model.config, weights: model.huggingFaceWeights(), tokenizerJSON: tokenizer.jsonData(),
            adapters: adapters.isEmpty ? nil : LoRAGroup.make(adapters),
            units: bundle.checkpoint.units,
            signal: objective.checkpointSection ?? bundle.checkpoint.signal,
            optimizer: optimizerGroup, provenance: provenance)
    }

    /// Loads a periodic checkpoint of this run into the model, adapters, objective and
    /// optimizer; returns the step it was taken at.
    private func restore(from url: URL) throws -> Int {
        let saved = try Checkpoint.read(from: url)
        guard let group = saved.optimizer, let step = group.attributes["trainer_step"]?.intValue,
              let kind = group.attributes["kind"]?.stringValue, let optimizerStep = group.attributes["step"]?.intValue else {
            throw TrainerError.notResumable(path: url.path)
        }
        if adapters.isEmpty {
            let restored = try TransformerModel(config: saved.config, weights: saved.weights, trainable: false)
            guard restored.parameterCount == model.parameterCount else { throw TrainerError.notResumable(path: url.path) }
            model.parameterStorage.pointer.update(from: restored.parameterStorage.pointer, count: model.parameterCount)
        } else {
            let groups = saved.adapters?.groups ?? [:]
            for (path, adapter) in adapters {
                guard let a = groups[path]?.tensors["A"], let b = groups[path]?.tensors["B"],
                      a.count == adapter.a.value.count, b.count == adapter.b.value.count else {
                    throw TrainerError.notResumable(path: url.path)
                }
                adapter.a.value.assign(a)
                adapter.b.value.assign(b)
            }
        }
        if !objective.namedParameters.isEmpty {
            guard let section = saved.signal else { throw TrainerError.notResumable(path: url.path) }
            try objective.restore(from: section)
        }
        try optimizer.importState(OptimizerState(kind: kind, step: Int(optimizerStep), tensors: group.tensors))
        return Int(step)
    }

    /// The newest `step-*.h5` in `folder`, if any.
    static func latestCheckpoint(in folder: URL) throws -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }.sorted().last.map { folder.appendingPathComponent($0) }
    }

    /// Keeps the newest `keepLast` periodic checkpoints.
    private func pruneCheckpoints(in folder: URL) throws {
        let keep = setup.keepLast
        guard keep > 0 else { return }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }.sorted()
        for name in names.dropLast(keep) { try FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
    }
}

/// A recipe that cannot be trained as it stands.
public enum TrainerError: Error, Equatable, CustomStringConvertible {
    case noBaseModel
    case nothingToTrain
    case noTrainableTokens
    case signalOnlyExample(origin: String)
    case notResumable(path: String)
    case missingObjectiveState(name: String)
    case vocabularyMismatch(tokenizer: String, tokens: Int, model: String, embeddings: Int)

    public var description: String {
        switch self {
        case .noBaseModel: return "recipe: model.base or model.init with model.tokenizer is required"
        case .nothingToTrain: return "recipe: no parameter is trainable (check adapters.kind and adapters.targets)"
        case .noTrainableTokens: return "data: no training example has a token to learn (all prompts, or empty)"
        case let .signalOnlyExample(origin):
            return "\(origin): a labelled prompt without an answer (or with an answer its file does not train on, train_answers: false) trains only the safety signal, and safety.signal is off"
        case let .notResumable(path): return "\(path): not a resumable checkpoint of this run (missing optimizer state or different shapes)"
        case let .missingObjectiveState(name): return "checkpoint: the objective's parameter '\(name)' is missing or misshaped"
        case let .vocabularyMismatch(tokenizer, tokens, model, embeddings):
            return "\(tokenizer): \(tokens) tokens, but \(model) has embeddings for \(embeddings); use the model's own tokenizer"
        }
    }
}
