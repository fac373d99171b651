import Checkpoints
import Distributed
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
///
/// Data-parallel (`Parameters.processes` of several processes): every process builds the
/// same global batches and computes its share of each one's rows; the loss terms are
/// weighted by the shares' counts (`ObjectiveLoss`) and the gradients summed
/// (`GradientReducer`), so every process steps on the whole batch's gradient. Dropout
/// draws per row of the whole batch. N processes therefore run the one-process run, up to
/// the order of float additions. Rank 0 alone reads and writes files.
public final class Trainer {
    /// How to run (what to train is the setup's business).
    public struct Parameters: Sendable {
        /// Continue from the newest checkpoint in the output folder, if there is one.
        public var resume = false
        /// Stop after this many completed steps, saving a checkpoint (a deliberate interruption).
        public var stopAfterStep: Int?
        /// The processes sharing the run (one, or the ranks `mpirun` started).
        public var processes: any ProcessGroup = SingleProcess()
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
    /// Sums gradients over the processes; nil in a one-process run.
    private let reducer: GradientReducer?
    /// The digest of the weights training starts from, taken before they change.
    private let parentSHA256: String?
    private var processes: any ProcessGroup { parameters.processes }

    /// Attaches adapters to `bundle`'s model, encodes the data and builds the optimizer.
    /// Nothing is trained yet.
    public init(setup: Setup, bundle: ModelBundle, objective: TrainingObjective = LanguageModelObjective(),
                parameters: Parameters = .init()) throws {
        self.setup = setup
        self.parameters = parameters
        self.objective = objective
        Self.setThreads(setup.threads, processesOnThisMachine: parameters.processes.localSize)
        self.bundle = bundle
        parentSHA256 = bundle.weightsSHA256
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
        let processCount = parameters.processes.size
        if processCount > 1 {
            guard setup.batchSize >= processCount else { throw TrainerError.batchSmallerThanProcesses(batch: setup.batchSize, processes: processCount) }
            // The LM head's adapter sees only the targeted positions, which a share cannot place in the whole batch.
            if case let .lora(_, _, dropout, _) = setup.adapters, dropout > 0,
               let head = adapters.first(where: { $0.0 == bundle.model.lmHead.path }) {
                throw TrainerError.dropoutOnHeadAcrossProcesses(module: head.0)
            }
        }
        reducer = processCount > 1 ? GradientReducer(processes: parameters.processes, parameters: trainable) : nil

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

    /// `threads` compute threads; 0 for this process's part of the cores, which it shares
    /// with `processesOnThisMachine` processes of the run.
    public static func setThreads(_ threads: Int, processesOnThisMachine: Int = 1) {
        Parallel.setThreads(threads > 0 ? threads : max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, processesOnThisMachine)))
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
    /// The final checkpoint is `model.h5` in the output folder. `finishing` runs on the
    /// trained model of a completed run, on rank 0, before that checkpoint is written: work
    /// whose result belongs in it (the guard's calibration) then costs no second write.
    @discardableResult
    public func run(progress: (TrainingProgress) -> Void = { _ in }, finishing: () throws -> Void = {}) throws -> TrainingSummary {
        let root = processes.isRoot
        let periodic = outputDirectory.appendingPathComponent("checkpoints")
        var startStep = 0
        if root {
            try FileManager.default.createDirectory(at: periodic, withIntermediateDirectories: true)
            if parameters.resume, let latest = try Self.latestCheckpoint(in: periodic) {
                startStep = try restore(from: latest)
            }
        }
        if processes.size > 1 { startStep = try synchronise(startStep: startStep) }
        var plan = self.plan
        plan.startStep = startStep
        progress(.started(plan))
        let log = root ? try MetricsLog(url: outputDirectory.appendingPathComponent("metrics.jsonl"), keepingStepsUpTo: startStep) : nil

        let tape = Tape()
        let seed = setup.seed
        // Only the steps (and evaluations between them) read the packed base; the final
        // evaluation, calibration and checkpoints read the float32 weights, exactly as loaded.
        if let format = setup.basePrecision, !adapters.isEmpty { model.packFrozenProjections(format) }
        defer { model.unpackProjections() }
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
                let (loss, metrics) = train(on: batch, tape: tape, scale: 1 / Float(microBatches))
                lossSum += loss
                for (key, mean) in metrics { metricSums[key, default: 0] += Double(mean.value) }
                tape.reset()
                tokens += batch.tokenCount
            }
            let reduceStarted = Date()
            reducer?.reduce()
            let reduceSeconds = Date().timeIntervalSince(reduceStarted)
            let norm = clipGradNorm(trainable, maxNorm: setup.gradClip > 0 ? setup.gradClip : .infinity)
            optimizer.step()
            optimizer.zeroGrad()

            tokensSeen += tokens
            lastLoss = lossSum / Double(microBatches)
            let elapsed = Date().timeIntervalSince(started)
            let done = step + 1 - startStep
            var report = StepReport(
                step: step + 1, totalSteps: totalSteps, loss: lastLoss, learningRate: Double(optimizer.learningRate),
                gradNorm: Double(norm), tokens: tokens, tokensPerSecond: Double(tokensSeen) / max(elapsed, 1e-9),
                elapsedSeconds: elapsed, etaSeconds: elapsed / Double(done) * Double(stop - step - 1),
                metrics: metricSums.mapValues { $0 / Double(microBatches) })
            if let reducer {
                report.metrics["allreduce_seconds"] = reduceSeconds
                report.metrics["allreduce_bytes"] = Double(reducer.lastBytes)
            }
            try log?.append(report)
            progress(.step(report))

            let completed = step + 1
            if setup.evalEvery > 0, completed % setup.evalEvery == 0, completed < totalSteps {
                let metrics = try evaluate(step: completed, tape: tape)
                evalLoss = metrics["eval_loss"] ?? evalLoss
                try log?.append(step: completed, metrics: metrics)
                progress(.evaluated(step: completed, metrics: metrics))
            }
            if root, setup.saveEvery > 0, completed % setup.saveEvery == 0 || completed == stop, completed < totalSteps {
                let url = periodic.appendingPathComponent(String(format: "step-%08d.h5", completed))
                try checkpoint(step: completed, includeOptimizer: true).write(to: url)
                try pruneCheckpoints(in: periodic)
                // The save read the packed base's float32 values back in; they are not needed until the end.
                if setup.basePrecision != nil { model.dropPackedBasePages() }
                progress(.saved(step: completed, url: url))
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        // The steps' buffers go first: a packed base's float32 values come back in after.
        tape.releaseMemory()
        if stop == totalSteps {
            // Nothing steps or saves the optimizer again: its state and the gradients would
            // sit beside the float32 weights through the final evaluation and what follows.
            optimizer.releaseState()
            for p in trainable { p.grad = nil }
        }
        model.unpackProjections()
        let finalURL = outputDirectory.appendingPathComponent(stop == totalSteps ? "model.h5" : "interrupted.h5")
        if stop == totalSteps {
            let metrics = try evaluate(step: totalSteps, tape: tape)
            evalLoss = metrics["eval_loss"] ?? evalLoss
            try log?.append(step: totalSteps, metrics: metrics)
            progress(.evaluated(step: totalSteps, metrics: metrics))
            // The activations' buffers are not needed again before the process ends.
            tape.releaseMemory()
            if root {
                try finishing()
                try checkpoint(step: totalSteps, includeOptimizer: false).write(to: finalURL)
                if !adapters.isEmpty {
                    try checkpoint(step: totalSteps, includeOptimizer: false).adapterOnly(baseVocabularySize: bundle.checkpoint.config.vocabSize)
                        .write(to: outputDirectory.appendingPathComponent(Self.adapterFileName))
                }
            }
        } else if root, setup.saveEvery == 0 {
            // An interrupted run without periodic saves still leaves a resumable checkpoint.
            try checkpoint(step: stop, includeOptimizer: true)
                .write(to: periodic.appendingPathComponent(String(format: "step-%08d.h5", stop)))
        }
        if root { progress(.saved(step: stop, url: finalURL)) }
        let summary = TrainingSummary(steps: stop, finalLoss: lastLoss, evalLoss: evalLoss, checkpoint: finalURL.path,
                                      seconds: elapsed, tokensPerSecond: Double(tokensSeen) / max(elapsed, 1e-9))
        progress(.finished(summary))
        return summary
    }

    /// Forward and backward of one micro-batch, the loss scaled by `scale` (1 / micro-batches):
    /// accumulates the gradient and returns the batch's loss and metrics. With several
    /// processes this process computes its share of the rows, each loss term weighted by
    /// the share of the term's count it holds, and the loss and metrics returned are the
    /// whole batch's.
    private func train(on batch: Batch, tape: Tape, scale: Float) -> (loss: Double, metrics: [(String, Mean)]) {
        guard processes.size > 1 else {
            let out = objective.loss(tape: tape, model: model, batch: batch)
            guard let loss = out.total(tape: tape) else { return (0, out.logged) }
            if loss.requiresGrad { tape.backward(scale != 1 ? tape.scale(loss, scale) : loss) }
            return (Double(loss.value[flat: 0]), out.logged)
        }
        let rows = processes.share(ofRows: batch.batch)
        let share = batch.share(rows)
        // A blank share draws no dropout that matters: it has no gradient.
        tape.rowShard = rows.isEmpty ? nil : (rows, batch.batch)
        defer { tape.rowShard = nil }
        let out = objective.loss(tape: tape, model: model, batch: share)
        var sums = out.sums
        processes.allReduce(&sums, .sum)
        let whole = out.whole(from: sums)
        if let loss = out.share(ofWhole: whole.termCounts, tape: tape, scale: scale), loss.requiresGrad { tape.backward(loss) }
        return (whole.loss, whole.logged)
    }

    /// Makes a data-parallel run one run: checks every process set up the same one, and
    /// gives every process rank 0's step, trainable values and (resuming) optimizer state.
    private func synchronise(startStep: Int) throws -> Int {
        let shape = [Double(totalSteps), Double(batcher.examples.count), Double(trainable.count), Double(plan.trainableParameters)]
        var low = shape, high = shape
        processes.allReduce(&low, .min)
        processes.allReduce(&high, .max)
        guard low == high else { throw TrainerError.processesDisagree(rank: processes.rank, steps: totalSteps, examples: batcher.examples.count) }
        var step = [Double(startStep)]
        processes.broadcast(&step, from: 0)
        reducer?.broadcastValues()
        if step[0] > 0 {
            let state = optimizer.exportState()
            var counter = [Double(state.step)]
            processes.broadcast(&counter, from: 0)
            for key in state.tensors.keys.sorted() {
                let t = state.tensors[key]!
                processes.broadcast(UnsafeMutableBufferPointer(start: t.data, count: t.count), from: 0)
            }
            try optimizer.importState(OptimizerState(kind: state.kind, step: Int(counter[0]), tensors: state.tensors))
        }
        return Int(step[0])
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
            // Each process evaluates every size-th batch; the sum is the whole set's.
            var sum = [0.0]
            tape.withoutGrad {
                for i in stride(from: processes.rank, to: count, by: processes.size) {
                    sum[0] += Double(objective.loss(tape: tape, model: model, batch: eval.batch(epoch: 0, index: i)).total(tape: tape)?.value[flat: 0] ?? 0)
                    tape.reset()
                }
            }
            processes.allReduce(&sum, .sum)
            metrics["eval_loss"] = sum[0] / Double(count)
        }
        return metrics
    }

    // MARK: - Checkpoints

    /// The run's state at `step` as a checkpoint: weights (the base, for LoRA), adapters,
    /// the objective's parameters, optionally the optimizer, and provenance. The weights
    /// are views of the model's parameters, not copies: write it before training on.
    public func checkpoint(step: Int, includeOptimizer: Bool) -> Checkpoint {
        var optimizerGroup: TensorGroup?
        if includeOptimizer {
            let state = optimizer.exportState()
            optimizerGroup = TensorGroup(tensors: state.tensors, attributes: [
                "kind": .string(state.kind), "step": .int(Int64(state.step)), "trainer_step": .int(Int64(step))])
        }
        let provenance = Provenance(
            recipe: setup.recipe?.text, recipeSHA256: setup.recipe?.sha256,
            dataSHA256: Dictionary(setup.train.files.map { ($0.file, $0.sha256) }, uniquingKeysWith: { a, _ in a }),
            parentSHA256: parentSHA256, seed: Int64(setup.seed), steps: Int64(step))
        return Checkpoint(
            config: model.config, weights: model.huggingFaceWeights(sharing: true), tokenizerJSON: tokenizer.jsonData(),
            // The base's own chat template travels on, so `template: auto` renders the
            // fine-tune's prompts as it was trained on them (SmolLM2's system message included).
            chatTemplate: tokenizer.chatTemplate ?? bundle.checkpoint.chatTemplate,
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
    case batchSmallerThanProcesses(batch: Int, processes: Int)
    case dropoutOnHeadAcrossProcesses(module: String)
    case processesDisagree(rank: Int, steps: Int, examples: Int)
    case missingObjectiveState(name: String)
    case vocabularyMismatch(tokenizer: String, tokens: Int, model: String, embeddings: Int)

    public var description: String {
        switch self {
        case .noBaseModel: return "recipe: model.base or model.init with model.tokenizer is required"
        case .nothingToTrain: return "recipe: no parameter is trainable (check adapters.kind and adapters.targets)"
        case .noTrainableTokens: return "data: no training example has a token to learn (all prompts, or empty)"
        case let .signalOnlyExample(origin):
            return "\(origin): a labelled prompt without an answer (or with an answer its file does not train on, train_answers: false) trains only the safety signal, and safety.signal is off"
        case let .batchSmallerThanProcesses(batch, processes):
            return "recipe: training.batch_size \(batch) is smaller than the \(processes) processes sharing each batch"
        case let .dropoutOnHeadAcrossProcesses(module):
            return "recipe: adapters.dropout on '\(module)' cannot be split across processes (it sees only targeted positions); set adapters.dropout: 0 or leave the LM head out of adapters.targets"
        case let .processesDisagree(rank, steps, examples):
            return "mpirun: the processes set up different runs (rank \(rank): \(steps) steps, \(examples) examples); every machine needs the same recipe, data and base model"
        case let .notResumable(path): return "\(path): not a resumable checkpoint of this run (missing optimizer state or different shapes)"
        case let .missingObjectiveState(name): return "checkpoint: the objective's parameter '\(name)' is missing or misshaped"
        case let .vocabularyMismatch(tokenizer, tokens, model, embeddings):
            return "\(tokenizer): \(tokens) tokens, but \(model) has embeddings for \(embeddings); use the model's own tokenizer"
        }
    }
}
