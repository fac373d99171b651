import Engine
import Foundation
import Models

extension Trainer {
    /// What to train and how, as typed values. A recipe maps onto it once, at the edge
    /// (`Recipe.trainerSetup()`); the safety methods' own fine-tunes build it directly.
    /// Defaults are the recipe schema's defaults.
    public struct Setup: Sendable {
        /// Which weights train.
        public enum Adapters: Sendable {
            /// Every weight.
            case full
            /// LoRA adapters on the linear modules `targets` accepts (by module path); the
            /// adapters' seed is the run's.
            case lora(rank: Int, alpha: Float, dropout: Float, targets: @Sendable (String) -> Bool)
        }

        /// The optimizer and its hyper-parameters.
        public enum Optimizer: Sendable {
            case adamw(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0)
            case sgd(momentum: Float = 0, weightDecay: Float = 0)
        }

        /// How long the run is.
        public enum Length: Sendable, Equatable {
            case epochs(Int)
            case steps(Int)
        }

        /// The recipe a run came from, stored in its checkpoints' provenance.
        public struct RecipeRecord: Sendable {
            public var text: String
            public var sha256: String
            public init(text: String, sha256: String) {
                self.text = text
                self.sha256 = sha256
            }
        }

        public var train: Dataset
        public var eval: Dataset
        public var adapters: Adapters
        /// LoRA only: the frozen base's block projections held packed in this format while
        /// the run trains (`TransformerModel.packFrozenProjections`); nil keeps float32.
        public var basePrecision: PackedMatrix.Format?
        /// Chat template name (`ChatTemplate.named`), resolved with the model's tokenizer.
        public var template = "auto"
        public var length: Length
        /// Sequences per micro-batch, micro-batches per optimizer step, tokens per sequence.
        public var batchSize = 8
        public var gradAccum = 1
        public var seqLen = 512
        /// Several examples per sequence.
        public var packing = false
        /// Batches of similar lengths (`Batcher.groupByLength`).
        public var groupByLength = false
        /// Shuffling, dropout and initialisation.
        public var seed: UInt64 = 0
        /// Compute threads; 0 means all cores, shared among the run's processes on this machine.
        public var threads = 0
        public var optimizer = Optimizer.adamw()
        public var learningRate: Float = 1e-4
        /// Global gradient-norm clip; 0 for none.
        public var gradClip: Float = 1
        public var schedule = LearningRateSchedule(.constant)
        /// Evaluate every this many steps (0: only at the end), on at most this many batches (0: all).
        public var evalEvery = 100
        public var evalMaxBatches = 20
        /// Where checkpoints, metrics and the report go.
        public var outputDirectory: URL
        /// Save a resumable checkpoint every this many steps (0: never), keeping the newest `keepLast` (0: all).
        public var saveEvery = 0
        public var keepLast = 3
        public var recipe: RecipeRecord?

        public init(train: Dataset, eval: Dataset = .empty, adapters: Adapters, length: Length,
                    outputDirectory: URL) {
            self.train = train
            self.eval = eval
            self.adapters = adapters
            self.length = length
            self.outputDirectory = outputDirectory
        }
    }
}
