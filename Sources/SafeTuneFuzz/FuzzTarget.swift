import Checkpoints
import Engine
import Foundation
import Models
import Recipes
import Tokenizers
import Training

/// A parser of outside input, run on one mutated input at a time.
///
/// File-based parsers read the input from `scratch`, a folder the runner owns; the
/// input file stays there, so after a crash it is the input that crashed.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `SafetensorsFile(data:source:)`, then every tensor converted to float32.
    case safetensors
    /// `Tokenizer(data:source:)`, then encode and decode with the parsed tokenizer.
    case tokenizer
    /// `RecipeLoader.load` on `scratch/input.yaml` (sibling seeds resolve `extends`), then rendering.
    case recipe
    /// `JSONLReader.read` on `scratch/input.jsonl`.
    case jsonl
    /// `Checkpoint.read` and `CheckpointSummary.read` on `scratch/input.h5`.
    case checkpoint
    /// `ModelConfig.huggingFace(json:file:)` on a `config.json`.
    case config
    /// `GGUFFile` on `scratch/input.gguf`, every tensor dequantised; for a model file, then
    /// `GGUFModel.importModel`, the tokenizer it builds and its chat template.
    case gguf

    /// Name of the file the input is written to inside the scratch folder.
    public var inputName: String {
        switch self {
        case .safetensors: return "input.safetensors"
        case .tokenizer, .config: return "input.json"
        case .recipe: return "input.yaml"
        case .jsonl: return "input.jsonl"
        case .checkpoint: return "input.h5"
        case .gguf: return "input.gguf"
        }
    }

    /// Tokens of the format worth inserting.
    public var dictionary: [[UInt8]] {
        let json = ["{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "\"\\u0000\"", "\"\\ud800\"", "{\"a\":",
                    "[[", "\"\\\\\"", "1e400", "-1", "\"\"", "\u{FEFF}", "\u{0085}", "\r\n"]
        switch self {
        case .safetensors:
            return (json + ["\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F16\"", "\"BF16\"", "\"F32\"", "\"I64\"", "\"BOOL\"",
                            "\"__metadata__\"", "[0,0]", "[]"]).map { Array($0.utf8) }
        case .tokenizer:
            return (json + ["\"vocab\"", "\"merges\"", "\"added_tokens\"", "\"id\"", "\"content\"", "\"special\":true", "\"type\"",
                            "\"BPE\"", "\"ByteLevel\"", "\"Metaspace\"", "\"Sequence\"", "\"Split\"", "\"TemplateProcessing\"",
                            "\"byte_fallback\":true", "\"<0xFF>\"", "\"Ġ\"", "\"▁\"", "\"pretokenizers\""]).map { Array($0.utf8) }
        case .config:
            return (json + ["\"model_type\"", "\"gpt2\"", "\"llama\"", "\"qwen2\"", "\"n_embd\"", "\"n_inner\"", "\"head_dim\"",
                            "\"hidden_size\"", "\"num_key_value_heads\"", "\"rope_parameters\"", "\"rope_type\"", "\"vocab_size\"",
                            "\"eos_token_id\":[", "\"tie_word_embeddings\""]).map { Array($0.utf8) }
        case .jsonl:
            return (json + ["\n", "{\"text\":\"x\"}\n", "\"messages\"", "\"role\"", "\"content\"", "\"assistant\"", "\"label\"",
                            "\"malicious\"", "\"prompt\"", "\"completion\"", "\u{FEFF}"]).map { Array($0.utf8) }
        case .recipe:
            return ["\n", ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "<<: *a\n", "!!binary ", "!!str ", "? ", "|\n  ", ">\n  ",
                    "'", "\"", "#", "~", "null", "extends: ", "extends: input.yaml\n", "  ", "\t", "---\n", "...\n", "%YAML 1.2\n",
                    "rank", "lr", "base: ", "targets: ", "1e999", ".inf", ".nan", "0o17", "0x1F"].map { Array($0.utf8) }
        case .gguf:
            // The magic, small and huge little-endian counts, type ids, and keys the importer reads.
            let numbers: [[UInt8]] = [[0x47, 0x47, 0x55, 0x46], [3, 0, 0, 0], [2, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF],
                                      [0, 0, 0, 0, 0, 0, 0, 0x80], [1, 0, 0, 0, 0, 0, 0, 0], [9, 0, 0, 0], [8, 0, 0, 0],
                                      [12, 0, 0, 0], [14, 0, 0, 0], [30, 0, 0, 0], [0x20, 0, 0, 0]]
            return numbers + ["general.architecture", "general.alignment", "llama", "qwen2", "tokenizer.ggml.tokens",
                              "tokenizer.ggml.merges", "tokenizer.ggml.pre", "smollm", "tokenizer.chat_template", "blk.0.attn_q.weight",
                              "token_embd.weight", "llama.embedding_length", "llama.block_count"].map { Array($0.utf8) }
        case .checkpoint:
            // HDF5 signatures and names the reader looks up.
            return ["\u{89}HDF\r\n\u{1A}\n", "OHDR", "OCHK", "BTHD", "FRHP", "FSHD", "TREE", "HEAP", "SNOD", "GCOL", "weights",
                    "config", "adapters", "format_version", "safetune-checkpoint"].map { Array($0.utf8) }
        }
    }

    /// Bounds for checkpoint reads under fuzzing: a mutated shape gets an error, not gigabytes.
    static let checkpointOptions: CheckpointReadOptions = {
        var options = CheckpointReadOptions()
        options.maxTensorElements = 1 << 22
        options.maxTotalElements = 1 << 24
        return options
    }()

    /// Runs `input` through the parser. Crashes end the process; errors are classified.
    public func run(_ input: [UInt8], scratch: URL) -> FuzzOutcome {
        let data = Data(input)
        let file = scratch.appendingPathComponent(inputName)
        do {
            try data.write(to: file)
        } catch {
            return .badError("cannot write the input to \(file.path): \(error)")
        }
        switch self {
        case .safetensors:
            do {
                let st = try SafetensorsFile(data: data, source: inputName)
                for name in st.names where [.F32, .F16, .BF16].contains(st.entries[name]?.dtype) { _ = try st.tensor(name) }
                return .accepted
            } catch { return .error(error, typed: true) }
        case .tokenizer:
            do {
                let tokenizer = try Tokenizer(data: data, source: inputName)
                // Use the parsed pipeline on plain, special and hostile text, and on ids in and out of range.
                let text = "Hello world! <s> 123 ñ 日本 \u{0}\u{FFFD} " + String(decoding: input.prefix(256), as: UTF8.self)
                let ids = tokenizer.encode(text) + tokenizer.encode(text, addSpecialTokens: false)
                _ = tokenizer.decode(ids + [-1, tokenizer.vocabSize, Int.max, Int.min])
                _ = tokenizer.decode(ids, skipSpecialTokens: true)
                _ = tokenizer.token(of: -1)
                _ = tokenizer.token(of: tokenizer.vocabSize)
                return .accepted
            } catch { return .error(error, typed: true) }
        case .config:
            do {
                guard let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
                    return .rejected("not a JSON object")
                }
                let config = try ModelConfig.huggingFace(json: json, file: inputName)
                _ = ParameterLayout(config: config).parameters.reduce(0) { $0 + (Tensor.checkedCount($1.shape) ?? 0) }
                return .accepted
            } catch { return .error(error, typed: true) }
        case .recipe:
            do {
                let recipe = try RecipeLoader().load(contentsOf: file)
                _ = recipe.canonicalValue.yamlText()
                _ = recipe.canonicalValue.jsonText()
                return .accepted
            } catch { return .error(error, typed: error is RecipeError) }
        case .jsonl:
            do {
                _ = try JSONLReader().read(url: file)
                return .accepted
            } catch { return .error(error, typed: error is DatasetError) }
        case .gguf:
            do {
                let gguf = try GGUFFile(contentsOf: file)
                for info in gguf.tensors { _ = gguf.floats(info) }
                // Files that hold a model (the tiny llama seed) go on through the importer.
                guard gguf.tensor(named: "token_embd.weight") != nil else { return .accepted }
                let checkpoint = try GGUFModel.importModel(from: file)
                _ = try checkpoint.tokenizer(source: inputName)?.encode("Hello 123 <|im_start|>")
                _ = try? checkpoint.chatTemplate.map { try ChatTemplate(jinja: $0) }
                return .accepted
            } catch { return .error(error, typed: error is GGUFError || error is TokenizerError) }
        case .checkpoint:
            do {
                _ = try CheckpointSummary.read(from: file)
                _ = try Checkpoint.read(from: file, options: Self.checkpointOptions)
                return .accepted
            } catch { return .error(error, typed: true) }
        }
    }
}
