import Training

/// The documented recipe keys: the one list that decides which keys exist, which
/// `--set` paths are valid, what did-you-mean suggests, and the table in docs/recipes.md.
public enum RecipeSchema {
    /// One documented key.
    public struct Key: Sendable, Equatable {
        /// Dotted key path; `[]` marks the items of a list (`data.train[].label`).
        public let path: String
        /// Type as documented, e.g. `integer`, `path`, `list of text`.
        public let type: String
        /// Default in canonical form (exactly as the resolved recipe prints it), or a sentence in `( )`.
        public let defaultValue: String
        /// Valid values or range.
        public let valid: String
        /// What the key does.
        public let meaning: String
    }

    private static func key(_ path: String, _ type: String, _ defaultValue: String, _ valid: String, _ meaning: String) -> Key {
        Key(path: path, type: type, defaultValue: defaultValue, valid: valid, meaning: meaning)
    }

    /// Every key, in documentation (and canonical output) order. Sections are listed too.
    public static let keys: [Key] = [
        key("extends", "path", "(none)", "a recipe file", "Parent recipe, relative to this file; its keys are deep-merged under this one's. Not part of the resolved recipe."),
        key("description", "text", "(none)", "any text", "What the recipe is for; published with it."),

        key("model", "section", "", "", "The model to start from."),
        key("model.base", "path", "(required unless model.init)", "smollm2 (the pinned base, fetched by scripts/setup), a SafeTune .h5 checkpoint, a .gguf file, or a Hugging Face folder with config.json", "Base model."),
        key("model.template", "choice", "auto", "llama2, chatml, plain, auto", "Chat template that turns examples into tokens; auto uses the one stored with the model or guesses from its family."),
        key("model.tokenizer", "path", "(from the base model)", "a tokenizer.json file", "Tokenizer; required with model.init."),
        key("model.init", "section", "(none)", "", "Train from scratch with this shape instead of loading model.base. The vocabulary size comes from the tokenizer."),
        key("model.init.family", "choice", "(required)", "gpt2, llama", "Architecture family."),
        key("model.init.layers", "integer", "(required)", "1 to 1024", "Transformer blocks."),
        key("model.init.d_model", "integer", "(required)", "8 to 65536, divisible by heads", "Hidden size."),
        key("model.init.heads", "integer", "(required)", "1 to 1024", "Attention heads."),
        key("model.init.kv_heads", "integer", "(= heads)", "divides heads; equal to heads for gpt2", "Key/value heads (grouped-query attention, llama only)."),
        key("model.init.d_ff", "integer", "(4 × d_model)", "1 to 1048576", "MLP intermediate size."),
        key("model.init.context", "integer", "1024", "8 to 1048576", "Maximum sequence length (position table for gpt2)."),

        key("data", "section", "", "", "Training and evaluation data (JSONL)."),
        key("data.train", "list of data files", "(required)", "at least one", "Training files. An item is a path or a mapping with path, label, weight."),
        key("data.train[].path", "path", "(required)", "a JSONL file", "Data file, relative to the recipe that names it."),
        key("data.train[].label", "choice", "(none)", "benign, malicious", "Safety label for every line that has no label of its own."),
        key("data.train[].weight", "number", "1.0", "0 < x <= 1000", "Times each line of this file is seen per epoch (0.5: every other epoch; 3: three times)."),
        key("data.train[].train_answers", "boolean", "(true; written only when false)", "true, false",
            "false: the answers are read but never learned as text; labelled lines then train the SA-ESS classification only (the guard's answer probes)."),
        key("data.eval", "list of data files", "(none)", "same items as data.train", "Held-out files for the eval loss."),
        key("data.format", "choice", "auto", "auto, text, prompt_completion, messages", "Line format; auto decides per line from its fields."),

        key("adapters", "section", "", "", "What is trained."),
        key("adapters.kind", "choice", "lora", "lora, full", "LoRA adapters on the target modules, or every weight (full fine-tuning)."),
        key("adapters.rank", "integer", "8", "1 to 4096", "LoRA rank r (lora only)."),
        key("adapters.alpha", "number", "16.0", "x > 0", "LoRA scale numerator: the update is (alpha / rank) · B·A (lora only)."),
        key("adapters.dropout", "number", "0.0", "0 <= x < 1", "Dropout on the LoRA input (lora only)."),
        key("adapters.base_precision", "choice", "(float32; written only when not)", "float32, float16, q8_0",
            "LoRA only: keep the frozen base's block projections in float16 or Q8_0 while training (about 2.0 or 1.1 bytes a weight instead of 4), unpacked inside each product; the checkpoint keeps the float32 base."),
        key("adapters.targets", "list of text", "[q_proj, k_proj, v_proj, o_proj, c_attn, attn.c_proj]", "module name patterns, * and ? globs", "Modules that get adapters. A pattern matches a module whose dotted name ends with it (q_proj, attn.c_proj, layers.1?.mlp.*)."),

        key("optimizer", "section", "", "", "Optimizer."),
        key("optimizer.name", "choice", "adamw", "adamw, sgd", "Optimizer."),
        key("optimizer.lr", "number", "0.0001", "0 < x <= 10", "Peak learning rate."),
        key("optimizer.betas", "list of 2 numbers", "[0.9, 0.999]", "each 0 <= x < 1", "AdamW moment decay rates."),
        key("optimizer.eps", "number", "1e-08", "x > 0", "AdamW denominator epsilon."),
        key("optimizer.weight_decay", "number", "0.0", "0 <= x <= 10", "Decoupled weight decay (AdamW) or L2 (SGD)."),
        key("optimizer.momentum", "number", "0.0", "0 <= x < 1", "SGD momentum."),
        key("optimizer.grad_clip", "number", "1.0", "x >= 0; 0 disables", "Clip the global gradient norm to this value."),

        key("schedule", "section", "", "", "Learning-rate schedule."),
        key("schedule.kind", "choice", "cosine", "constant, linear, cosine", "Shape after warmup (linear and cosine decay to 0 at the last step)."),
        key("schedule.warmup_steps", "integer", "0", "x >= 0, below training.steps", "Linear warmup from 0 to optimizer.lr."),

        key("training", "section", "", "", "Length, batching and reproducibility."),
        key("training.epochs", "integer", "(exactly one of epochs, steps)", "1 to 10000", "Passes over the training data."),
        key("training.steps", "integer", "(exactly one of epochs, steps)", "1 to 10000000", "Optimizer steps."),
        key("training.batch_size", "integer", "8", "1 to 4096", "Sequences per micro-batch."),
        key("training.grad_accum", "integer", "1", "1 to 4096", "Micro-batches per optimizer step."),
        key("training.seq_len", "integer", "512", "8 to 1048576, at most model.init.context", "Tokens per sequence (longer examples are truncated)."),
        key("training.packing", "boolean", "false", "true, false", "Lay each batch's examples whole into as few rows as fit, without padding; attention stays within each example, so loss and gradients are the unpacked ones."),
        key("training.group_by_length", "boolean", "(false; written only when true)", "true, false",
            "Batch examples of similar lengths (sorted within windows of 16 batches of the shuffled epoch), so unpacked rows carry little padding."),
        key("training.seed", "integer", "0", "x >= 0", "Seed for shuffling, dropout and initialisation."),
        key("training.threads", "integer", "0", "0 to 1024; 0 = all cores", "Compute threads. Under `mpirun`, 0 gives each process its share of its machine's cores."),

        key("eval", "section", "", "", "Evaluation during training."),
        key("eval.every", "integer", "100", "x >= 0; 0 = only at the end", "Evaluate every this many optimizer steps."),
        key("eval.max_batches", "integer", "20", "x >= 0; 0 = all", "Batches of data.eval per evaluation."),
        key("eval.suites", "list of choices", "[safety, utility]", "safety, utility; no repeats", "Built-in suites run before training and after it, on the first data.eval file. The measurement before training is the parent file's: kept beside it (`<parent>.measure/`) and reused by its next fine-tunes."),
        key("eval.prompts", "integer", "50", "x >= 0; 0 = all", "Prompts of each kind (harmful, harmless, skill) the suites use."),
        key("eval.max_tokens", "integer", "48", "1 to 4096", "Tokens generated per answer in the suites."),

        key("safety", "section", "", "", "The safety methods."),
        key("safety.ssah", "section", "", "", "SSAH: find safety-critical units and keep fine-tuning away from them."),
        key("safety.ssah.enabled", "boolean", "false", "true, false", "Score units and apply freeze and route."),
        key("safety.ssah.freeze", "text", "none", "none, scu, scu+cu_top:<fraction>, scu+cu", "Units that may not change: safety-critical (SCU), plus the top fraction of complex units (CU) by safety score, or all CU."),
        key("safety.ssah.route", "choice", "all", "all, ru, ru+cu", "Units that may change: all, only redundant units (RU), or RU and CU."),
        key("safety.ssah.safety_data", "path", "(none)", "a JSONL file", "Harmful prompts with refusals for the safety score; required unless model.base is a .h5 checkpoint with a stored unit map."),
        key("safety.ssah.utility_data", "path", "(none)", "a JSONL file", "Benign data for the utility score; same rule as safety_data."),
        key("safety.ssah.sizes", "section", "", "", "Unit group sizes as fractions of each layer's units."),
        key("safety.ssah.sizes.scu", "number", "0.015", "0 < x < 1", "Safety-critical units: highest safety minus utility score."),
        key("safety.ssah.sizes.ucu", "number", "0.1", "0 < x < 1", "Utility-critical units: lowest safety minus utility score."),
        key("safety.ssah.sizes.ru", "number", "0.15", "0 < x < 1; scu + ucu + ru < 1", "Redundant units: lowest safety plus utility score."),
        key("safety.signal", "section", "", "", "SA-ESS: an explicit [CLS] benign/malicious classification task."),
        key("safety.signal.enabled", "boolean", "false", "true, false", "Add the classification head and loss; needs labelled training data and no packing."),
        key("safety.signal.lambda", "number", "0.1", "0 < x <= 10", "Weight of the classification loss: L = L_lm + lambda · L_cls."),
        key("safety.signal.malicious_weight", "number", "1.0", "0 < x <= 1000",
            "Weight of a malicious example in L_cls relative to a benign one (class balance)."),
        key("safety.signal.answer_probes", "boolean", "(false; written only when true)", "true, false",
            "Also train the guard's answer probes: L = L_lm + lambda · (L_cls + L_probe), a CLS at position 0 reading each window of a labelled answer that the default guard checks, classified with the example's label."),
        key("safety.signal.calibration", "path", "(none)", "a JSONL file",
            "Harmless prompts, unseen in training and evaluation, on which the guard's threshold is calibrated after training (calibrate-guard); without it the trained head keeps none and the guard uses 0.5."),
        key("safety.signal.over_refusal_budget", "number", "(0.05 when calibrating)", "0 <= x < 1",
            "Largest share of the calibration prompts the guard may turn into refusals (the model's own refusals are not charged)."),
        key("safety.signal.pattern", "choice", "sft", "sft, pretrain", "Attention pattern: sft (CLS sees the prompt, answers see CLS) or pretrain (CLS sees all, nothing sees CLS)."),
        key("safety.signal.cls_token", "text", "[CLS]", "non-empty text", "Special token added to the tokenizer and prepended at position 0."),
        key("safety.gate", "section", "", "", "BD-VAX gate: check the trained checkpoint for a backdoor before it is released."),
        key("safety.gate.enabled", "boolean", "true", "true, false", "Run the gate on the final checkpoint."),
        key("safety.gate.on_reject", "choice", "quarantine", "quarantine, purify, fail", "On a reject verdict: keep the checkpoint aside, purify it, or fail the run."),
        key("safety.gate.variants", "integer", "6", "1 to 64", "Synthetic backdoor/clean variant pairs."),
        key("safety.gate.steps", "integer", "(the gate's: 40)", "1 to 100000", "Optimizer steps per variant fine-tune."),
        key("safety.gate.kind", "choice", "(full; written only when lora)", "full, lora", "How the variants are fine-tuned: every weight, or LoRA on every projection (merged); LoRA is several times faster on a large model."),
        key("safety.gate.rule", "choice", "share", "share, alignment, residual", "Statistic that decides the verdict (docs/gate.md)."),
        key("safety.gate.variants_from", "choice", "checkpoint", "checkpoint, parent", "Fine-tune the variants from the checkpoint under test or from its parent."),
        key("safety.gate.tau", "number", "0.08", "0 < x < 1", "Fraction of channels per layer in the signature (and re-initialised when purifying)."),
        key("safety.gate.reference", "path", "(none)", "a checkpoint", "Parent checkpoint to compare against, if trusted."),
        key("safety.gate.clean_data", "path", "(training data)", "a JSONL file", "Clean data for the variants and the fluency repair; the benign training data when absent."),
        key("safety.gate.probes", "path", "(none)", "a JSONL file", "Harmful and harmless probe prompts: adds the behavioural scan stage (4 of each are used)."),
        key("safety.gate.scan_calibrations", "integer", "3", "2 to 16", "Clean fine-tunes of the parent that calibrate the behavioural stage's threshold."),
        key("safety.gate.scan_calibration", "path", "(none)", "a JSON file", "Keep the behavioural stage's calibration here between runs (written when absent)."),
        key("safety.gate.direction", "boolean", "true", "true, false", "Direction stage: on full-weight runs whose base carries its safety directions (`safetune units` stores them), on every run with direction_probes."),
        key("safety.gate.direction_probes", "path", "(the base's directions)", "a JSONL file", "Harmful and harmless prompts to measure the base's directions on (100 of each); runs the stage on adapter runs too."),
        key("safety.gate.direction_data", "path", "(the clean data)", "a JSONL file", "Trusted data in the run's own mix, refusals included, for the direction stage's calibration fine-tunes."),
        key("safety.gate.direction_calibrations", "integer", "4", "2 to 16", "Clean fine-tunes of the parent that calibrate the direction stage's thresholds."),
        key("safety.gate.direction_samples", "integer", "(400; written only when set)", "1 to 1000000", "Samples of the calibration data each calibration fine-tune trains on."),
        key("safety.gate.direction_max_steps", "integer", "(the run's steps; written only when set)", "1 to 1000000", "Most steps each calibration fine-tune takes, its schedule compressed to them: a shorter cold calibration, but lower thresholds, which reject clean runs much longer than the cap (docs/gate.md)."),
        key("safety.gate.direction_calibration", "path", "(none)", "a JSON file, or a folder ending in /", "Keep the direction stage's calibration here between runs (written when absent); a folder keeps one file per parent, data and regime."),

        key("output", "section", "", "", "Where results go."),
        key("output.name", "text", "(recipe file name)", "letters, digits, '.', '_', '-'", "Run name."),
        key("output.dir", "path", "(runs/<name>)", "a folder", "Output folder, relative to the recipe."),
        key("output.save_every", "integer", "0", "x >= 0; 0 = only at the end", "Save a checkpoint every this many steps."),
        key("output.keep_last", "integer", "3", "x >= 0; 0 = keep all", "Periodic checkpoints to keep."),
        key("output.report", "boolean", "true", "true, false", "Write report.html (self-contained: summary, loss curves, safety sections) next to the checkpoint."),
    ]

    /// The immediate child key names of a section path ("" for the top level).
    public static func children(of path: String) -> [String] {
        let prefix = path.isEmpty ? "" : path + "."
        return keys.compactMap { key -> String? in
            guard key.path.hasPrefix(prefix) else { return nil }
            let rest = key.path.dropFirst(prefix.count)
            guard !rest.isEmpty, !rest.contains("."), !rest.hasPrefix("[") else { return nil }
            return String(rest)
        }
    }

    /// Paths a `--set` may name: every key except list items and `extends`.
    public static var settablePaths: [String] {
        keys.map(\.path).filter { !$0.contains("[]") && $0 != "extends" }
    }

    /// The key table for docs/recipes.md, generated so the docs cannot drift from the code.
    public static func markdownTable() -> String {
        var out = "| key | type | default | valid | meaning |\n|---|---|---|---|---|\n"
        for key in keys where key.type != "section" || key.defaultValue != "" {
            let cells = [ "`\(key.path)`", key.type, key.defaultValue.isEmpty || key.defaultValue.hasPrefix("(") ? key.defaultValue : "`\(key.defaultValue)`",
                          key.valid, key.meaning ]
            out += "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        return out
    }
}
