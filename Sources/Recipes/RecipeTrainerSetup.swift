import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers
import Training

/// The recipe mapped onto the trainer's typed values: the one place a recipe's sections
/// become `Trainer.Setup`, and its `model` section a loaded base.
extension Recipe {
    /// The trainer's typed setup for this recipe: its data read and checked (`RecipeData`),
    /// every section the trainer needs mapped onto `Trainer.Setup`.
    public func trainerSetup() throws -> Trainer.Setup {
        let data = try RecipeData(recipe: self)
        let adapters: Trainer.Setup.Adapters
        switch self.adapters.kind {
        case .full: adapters = .full
        case .lora:
            let section = self.adapters
            adapters = .lora(rank: section.rank, alpha: Float(section.alpha), dropout: Float(section.dropout),
                             targets: { section.targets(module: $0) })
        }
        var s = Trainer.Setup(train: data.train, eval: data.eval, adapters: adapters, length: training.length, outputDirectory: output.dir.url)
        s.template = model.template.rawValue
        s.basePrecision = self.adapters.basePrecision.packed
        s.batchSize = training.batchSize
        s.gradAccum = training.gradAccum
        s.seqLen = training.seqLen
        s.packing = training.packing
        s.groupByLength = training.groupByLength
        s.seed = UInt64(training.seed)
        s.threads = training.threads
        let o = optimizer
        switch o.name {
        case .adamw: s.optimizer = .adamw(beta1: Float(o.betas.0), beta2: Float(o.betas.1), eps: Float(o.eps), weightDecay: Float(o.weightDecay))
        case .sgd: s.optimizer = .sgd(momentum: Float(o.momentum), weightDecay: Float(o.weightDecay))
        }
        s.learningRate = Float(o.lr)
        s.gradClip = Float(o.gradClip)
        s.schedule = LearningRateSchedule(schedule.kind, warmupSteps: schedule.warmupSteps)
        s.evalEvery = eval.every
        s.evalMaxBatches = eval.maxBatches
        s.saveEvery = output.saveEvery
        s.keepLast = output.keepLast
        s.recipe = .init(text: canonicalText, sha256: sha256)
        return s
    }

    /// The base model this recipe names: a checkpoint, a Hugging Face folder, or a fresh model
    /// of `model.init`'s shape with `model.tokenizer`'s vocabulary.
    public func loadBase() throws -> ModelBundle {
        let full = adapters.kind == .full
        if let base = model.base {
            let bundle = try ModelBundle.load(base.url, trainable: full)
            let tokenizer = try model.tokenizer.map { try Tokenizer(contentsOf: $0.url) } ?? bundle.tokenizer
            // Ids the embedding lacks would stop the process inside the first forward.
            if let tokenizer, tokenizer.vocabSize > bundle.model.config.vocabSize {
                throw TrainerError.vocabularyMismatch(tokenizer: model.tokenizer?.url.path ?? base.url.path + " (tokenizer.json)",
                                                      tokens: tokenizer.vocabSize, model: base.url.path,
                                                      embeddings: bundle.model.config.vocabSize)
            }
            return bundle.replacing(model: bundle.model, tokenizer: tokenizer)
        }
        guard let shape = model.initShape, let path = model.tokenizer else { throw TrainerError.noBaseModel }
        let tokenizer = try Tokenizer(contentsOf: path.url)
        let config = ModelConfig(
            family: shape.family == .gpt2 ? .gpt2 : .llama, vocabSize: tokenizer.vocabSize, hiddenSize: shape.dModel,
            numLayers: shape.layers, numHeads: shape.heads, numKVHeads: shape.kvHeads, intermediateSize: shape.dFF,
            maxPositions: shape.context, tieWordEmbeddings: true,
            bosTokenId: tokenizer.bosTokenId, eosTokenId: tokenizer.eosTokenId)
        let fresh = try TransformerModel(config: config, seed: UInt64(training.seed), trainable: full)
        let checkpoint = Checkpoint(config: config, weights: [:], tokenizerJSON: tokenizer.jsonData())
        return ModelBundle(model: fresh, tokenizer: tokenizer, checkpoint: checkpoint, source: path.url)
    }
}

extension Trainer {
    /// The run a recipe describes, on `bundle` or else on the base the recipe names.
    public convenience init(recipe: Recipe, bundle: ModelBundle? = nil, objective: TrainingObjective = LanguageModelObjective(),
                            parameters: Parameters = .init()) throws {
        // Threads first: loading the base already multiplies matrices (merging adapters).
        Self.setThreads(recipe.training.threads)
        let base = try bundle ?? recipe.loadBase()
        try self.init(setup: recipe.trainerSetup(), bundle: base, objective: objective, parameters: parameters)
    }
}
