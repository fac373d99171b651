// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SafeTune",
    products: [
        .executable(name: "safetune", targets: ["SafeTuneCLI"]),
        .executable(name: "safetune-fuzz", targets: ["SafeTuneFuzzCLI"]),
        .library(name: "SafeTune", targets: ["Engine", "Distributed", "Tokenizers", "Models", "Checkpoints", "Training", "Safety", "Recipes", "Pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System libraries: a module map plus a shim header each.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),

        // Tensors, kernels, the reverse-mode tape, optimizers.
        .target(name: "Engine", dependencies: ["CBLAS"]),
        // The processes of a data-parallel run: one alone, or ranks under mpirun (Open MPI).
        .target(name: "Distributed", dependencies: ["CMPI"]),
        // tokenizer.json: byte-level and Metaspace BPE, training; the strict JSON parser.
        .target(name: "Tokenizers"),
        // GPT-2 and Llama families, LoRA, generation, chat templates.
        .target(name: "Models", dependencies: ["Engine", "Tokenizers"]),
        // HDF5 checkpoints, model loading, safetensors, Hugging Face and GGUF import/export.
        .target(name: "Checkpoints", dependencies: ["Engine", "Models", "Tokenizers", "CHDF5"]),
        // Datasets, batching, the trainer loop (typed setup; objectives plug in).
        .target(name: "Training", dependencies: ["Engine", "Distributed", "Models", "Tokenizers", "Checkpoints"]),
        // Evaluation; SSAH, SA-ESS and BD-VAX, each with its own settings type.
        .target(name: "Safety", dependencies: ["Engine", "Models", "Tokenizers", "Checkpoints", "Training"]),
        // YAML recipes: read, checked, overridden, canonicalised, and mapped once onto the typed
        // settings of the trainer and the safety methods.
        .target(name: "Recipes", dependencies: [
            "Engine", "Models", "Tokenizers", "Checkpoints", "Training", "Safety",
            .product(name: "Yams", package: "Yams"),
        ]),
        // A recipe's whole run: training with SSAH masks and the SA-ESS objective, then the gate.
        .target(name: "Pipeline", dependencies: ["Engine", "Models", "Tokenizers", "Checkpoints", "Training", "Safety", "Recipes"]),
        // Research harnesses the command line runs: the instruction corpus builder and the
        // backdoor experiment (not part of the library product).
        .target(name: "Experiments", dependencies: ["Engine", "Models", "Tokenizers", "Checkpoints", "Training", "Safety"]),
        .executableTarget(name: "SafeTuneCLI", dependencies: [
            "Engine", "Distributed", "Models", "Tokenizers", "Checkpoints", "Training", "Safety", "Recipes", "Pipeline", "Experiments",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Seeded mutation fuzzing of every parser of outside input (corpus in Fuzz/corpus).
        .target(name: "SafeTuneFuzz", dependencies: ["Engine", "Tokenizers", "Models", "Checkpoints", "Training", "Recipes"]),
        .executableTarget(name: "SafeTuneFuzzCLI", dependencies: [
            "SafeTuneFuzz", "Checkpoints", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Test helpers shared by the test targets (running the built commands).
        .target(name: "TestSupport", dependencies: ["Checkpoints", "Models", "Training", "Engine"], path: "Tests/TestSupport"),
        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Engine", "Tokenizers", "Checkpoints"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "Models", "Engine", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SafetyTests", dependencies: ["Safety", "Training", "Recipes", "Models", "Engine", "Tokenizers", "Checkpoints", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Safety", "Training", "Recipes", "Models", "Engine", "Checkpoints", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Recipes", "Checkpoints", "Models", "Engine", "TestSupport"]),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "Training", "Safety", "Checkpoints", "TestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["SafeTuneFuzz", "TestSupport"]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "Training", "Checkpoints"]),
    ],
    swiftLanguageModes: [.v6]
)
