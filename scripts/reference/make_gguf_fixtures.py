#!/usr/bin/env python3
"""Writes the GGUF fixtures under Tests/CheckpointsTests/Fixtures/gguf/ with gguf-py + transformers.

Two parts:
  quant/  raw ggml blocks of every supported type (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
          Q4_K, Q6_K) and what `gguf.quants.dequantize` makes of them, plus Q8_0 and F16
          quantisation of random float32 inputs (`gguf.quants.quantize`), to check block
          decoding and encoding bit for bit.
  tiny/   `tiny.gguf`, a 2-block random Llama written with `gguf.GGUFWriter` the way llama.cpp's
          convert_hf_to_gguf.py writes a Llama (names, Q/K row permutation, metadata keys, a
          byte-level BPE vocabulary with SmolLM2's chat template), and `expected.json`: what
          transformers' GGUF loader (float32) makes of it: config, token ids, full logits,
          per-token log-probs, chat-template renderings and a greedy continuation.

Requirements (CPU build of torch; the unpinned name pulls a multi-GB CUDA build):
    pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
    pip install transformers tokenizers gguf numpy
Run from the repository root, offline, on one thread:
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python3 scripts/reference/make_gguf_fixtures.py
Options: --out DIR (default Tests/CheckpointsTests/Fixtures/gguf), --only quant|tiny,
--check (regenerate into a temporary folder and compare byte for byte with the committed files).
"""

import hashlib
import json
import math
import os
import shutil

import gguf
import numpy as np
import tokenizers
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES
from tokenizers import Tokenizer, pre_tokenizers

from common import fixture_main
from common import to_json as common_to_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# --- quant/ ------------------------------------------------------------------------------

QUANT_SEED = 20260601
# Blocks per type (for F16 / BF16: values).
QUANT_COUNTS = {
    Q.F16: 64, Q.BF16: 64,
    Q.Q8_0: 8, Q.Q4_0: 8, Q.Q4_1: 8, Q.Q5_0: 8, Q.Q5_1: 8,
    Q.Q4_K: 4, Q.Q6_K: 4,
}
# Byte offsets of the float16 scale fields inside one block: (name, offset).
SCALE_FIELDS = {
    Q.Q8_0: [("d", 0)],
    Q.Q4_0: [("d", 0)],
    Q.Q4_1: [("d", 0), ("m", 2)],
    Q.Q5_0: [("d", 0)],
    Q.Q5_1: [("d", 0), ("m", 2)],
    Q.Q4_K: [("d", 0), ("dmin", 2)],
    Q.Q6_K: [("d", 208)],
}


def random_scales(rng, n):
    """n finite float16 values: magnitudes 1e-4..1 (log-uniform), random signs, with a positive
    subnormal at index 1 and a negative subnormal at index 2 (when n allows)."""
    mag = 10.0 ** rng.uniform(-4.0, 0.0, size=n)
    sign = np.where(rng.random(n) < 0.35, -1.0, 1.0)
    vals = (sign * mag).astype(np.float16)
    bits = vals.view(np.uint16)
    if n > 1:
        bits[1] = np.uint16(rng.integers(1, 0x400))            # +subnormal
    if n > 2:
        bits[2] = np.uint16(0x8000 | int(rng.integers(1, 0x400)))  # -subnormal
    assert np.isfinite(vals).all()
    return vals


def random_half_bits(rng, n, exp_mask):
    """n random 16-bit patterns that are finite in a format whose exponent field is exp_mask."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    while True:
        bad = (bits & exp_mask) == exp_mask
        if not bad.any():
            return bits
        bits[bad] = rng.integers(0, 1 << 16, size=int(bad.sum()), dtype=np.uint32).astype(np.uint16)


def raw_blocks(rng, qtype):
    """Random raw bytes for QUANT_COUNTS[qtype] blocks, scale fields set to finite float16."""
    count = QUANT_COUNTS[qtype]
    if qtype in (Q.F16, Q.BF16):
        exp_mask = 0x7C00 if qtype == Q.F16 else 0x7F80
        bits = random_half_bits(rng, count, exp_mask)
        # Fixed edge cases first: +0, -0, smallest subnormal, largest subnormal, smallest normal,
        # largest finite (positive and negative), 1.0.
        if qtype == Q.F16:
            special = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]
        else:
            special = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80]
        bits[: len(special)] = special
        return bits.astype("<u2").view(np.uint8).reshape(count, 2)
    _, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(count, type_size), dtype=np.uint16).astype(np.uint8)
    for index, (_name, offset) in enumerate(SCALE_FIELDS[qtype]):
        scales = random_scales(rng, count)
        if index == 1 and count > 3:  # second field: its own subnormal, in another block
            scales[3] = np.array([2.0 ** -20], dtype=np.float16)[0]
        raw[:, offset:offset + 2] = scales.astype("<f2").view(np.uint8).reshape(count, 2)
    return raw


def q8_0_inputs(rng):
    """256 float32 values (8 blocks of 32) covering Q8_0's edge cases."""
    blocks = [
        rng.standard_normal(32),                     # ordinary
        rng.standard_normal(32) * 1e-3,              # small
        rng.standard_normal(32) * 100.0,             # large
        np.zeros(32),                                # d == 0: all quants 0
        # exact halves with amax 127, so d == 1 and x * id hits .5: rounds away from zero
        np.array([127.0, -127.0] + [s * (k + 0.5) for k in range(15) for s in (1, -1)]),
        np.concatenate([[1000.0], rng.standard_normal(31)]),  # one outlier
        rng.standard_normal(32) * 1e-5,              # d is a float16 subnormal
        rng.uniform(-1.0, 1.0, 32) * np.where(np.arange(32) == 7, -3.0, 1.0),  # negative amax
    ]
    return np.concatenate(blocks).astype(np.float32)


def f16_inputs(rng):
    """256 float32 values covering float32 -> float16 rounding (nearest even), overflow to
    infinity, subnormals and underflow to zero. No NaN."""
    special = [
        0.0, -0.0, 1.0, -1.0, 65504.0, -65504.0,
        65519.99609375,            # rounds down to 65504
        65520.0, -65520.0, 1e5,    # overflow to +/-inf
        1.0 + 2.0 ** -11,          # tie: rounds to 1.0 (even)
        1.0 + 3 * 2.0 ** -11,      # tie: rounds up to 1 + 2^-9 (even)
        -(1.0 + 2.0 ** -11),
        2.0 ** -24, -(2.0 ** -24),  # smallest subnormal
        2.0 ** -25,                # tie between 0 and 2^-24: rounds to 0
        1.5 * 2.0 ** -25,          # rounds to 2^-24
        2.0 ** -14,                # smallest normal
        2.0 ** -14 - 2.0 ** -25,   # tie between largest subnormal and smallest normal
        1e-10, -1e-10,             # underflow to +/-0
        0.1, 1.0 / 3.0, math.pi, 1e-5, 3e-5, 6e-5, 2049.0, 4097.0,
    ]
    rest = 256 - len(special)
    parts = [
        rng.standard_normal(rest // 4),
        rng.standard_normal(rest // 4) * 1e-3,
        rng.standard_normal(rest // 4) * 1e3,
        rng.standard_normal(rest - 3 * (rest // 4)) * 1e-6,
    ]
    return np.concatenate([np.array(special)] + parts).astype(np.float32)


QUANT_README = """# GGML block fixtures

Made by `scripts/reference/make_gguf_fixtures.py` with gguf-py (`gguf.quants`), seeded numpy.
All files are little-endian and headerless.

- `<TYPE>.bin`: raw ggml blocks, exactly as they sit in a GGUF tensor's data, back to back.
  8 blocks for the 32-value types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), 4 blocks for the 256-value
  K types (Q4_K, Q6_K), 64 values (128 bytes) for F16 and BF16.
- `<TYPE>.f32`: float32 result of `gguf.quants.dequantize(raw, GGMLQuantizationType.<TYPE>)`,
  one value per element, in block order (32 or 256 per block).

Block layouts (bytes): Q8_0 34 = d f16, qs int8[32]; Q4_0 18 = d, qs[16];
Q4_1 20 = d, m, qs[16]; Q5_0 22 = d, qh[4], qs[16]; Q5_1 24 = d, m, qh[4], qs[16];
Q4_K 144 = d, dmin, scales[12], qs[128]; Q6_K 210 = ql[128], qh[64], scales int8[16], d.

The quant bits (qs, qh, ql, K scales) are uniformly random bytes. The float16 scale fields
(d, m, dmin) are finite: magnitudes 1e-4..1, about a third negative, and block 1 holds a
positive and block 2 a negative subnormal `d`; for Q4_1, Q5_1 and Q4_K block 3's second field
(m / dmin) is the subnormal 2^-20. F16 and BF16 values are random finite bit patterns (no inf,
no NaN); the first eight are +0, -0, the smallest and largest subnormal, the smallest normal,
the largest finite (+ and -) and 1.0.

Quantisation (export side):

- `Q8_0_quantize.f32`: 256 float32 inputs (8 blocks); `Q8_0_quantize.bin`: the 8 blocks
  `gguf.quants.quantize(x, Q8_0)` produces (bit-exact with ggml's `quantize_row_q8_0_ref`):
  `d = amax / 127` in float32, `id = d != 0 ? 1 / d : 0` from that float32 `d` (not from
  its float16 rounding), `q = roundf(x * id)` (halves away from zero), `d` stored as float16
  (nearest even). The blocks are: normal, x1e-3, x100, all zeros, exact halves with amax 127,
  one outlier, x1e-5 (float16-subnormal `d`), negative amax.
- `F16_quantize.f32`: 256 float32 inputs; `F16_quantize.bin`: their float16 (nearest even,
  overflow to inf, subnormals kept), as `x.astype(float16)`. The first 30 inputs are edge
  cases (ties, overflow, smallest subnormal, underflow); the rest random at several scales.

`manifest.json` lists the files, counts and library versions.
"""


def write_quant(out):
    folder = os.path.join(out, "quant")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(QUANT_SEED)
    manifest = {"seed": QUANT_SEED, "types": {}}
    for qtype, count in QUANT_COUNTS.items():
        raw = raw_blocks(rng, qtype)
        values = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        assert raw.size == count * type_size and values.size == count * block_size
        assert np.isfinite(values).all(), qtype.name
        raw.tofile(os.path.join(folder, f"{qtype.name}.bin"))
        values.astype("<f4").tofile(os.path.join(folder, f"{qtype.name}.f32"))
        manifest["types"][qtype.name] = {
            "blocks": count if block_size > 1 else None,
            "values": int(values.size),
            "block_values": block_size,
            "block_bytes": type_size,
            "bytes": int(raw.size),
        }

    x = q8_0_inputs(rng)
    q = gguf.quants.quantize(x.reshape(-1, 32), Q.Q8_0)
    assert q.shape == (8, 34)
    back = gguf.quants.dequantize(q, Q.Q8_0).reshape(-1)
    assert np.abs(back - x).max() <= np.abs(x).max() / 127  # loose sanity
    x.astype("<f4").tofile(os.path.join(folder, "Q8_0_quantize.f32"))
    q.tofile(os.path.join(folder, "Q8_0_quantize.bin"))

    x = f16_inputs(rng)
    assert x.size == 256 and not np.isnan(x).any()
    with np.errstate(over="ignore"):
        h = gguf.quants.quantize(x, Q.F16)
    assert h.dtype == np.float16
    x.astype("<f4").tofile(os.path.join(folder, "F16_quantize.f32"))
    h.astype("<f2").tofile(os.path.join(folder, "F16_quantize.bin"))
    manifest["quantize"] = {
        "Q8_0_quantize": {"inputs": 256, "blocks": 8, "function": "gguf.quants.quantize(x, Q8_0)"},
        "F16_quantize": {"inputs": 256, "function": "gguf.quants.quantize(x, F16) == x.astype(float16)"},
    }
    manifest["generated_by"] = f"gguf {gguf_version()}, numpy {np.__version__}"
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        f.write(to_json(manifest) + "\n")
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(QUANT_README)
    print(f"quant: {len(os.listdir(folder))} files, {folder_size(folder)} bytes")


# --- tiny/ -------------------------------------------------------------------------------

TINY_SEED = 9
TOKENIZER_SOURCE = "Tests/TokenizersTests/Fixtures/qwen2.json"
N_LAYER, N_EMBD, N_FF, N_HEAD, N_HEAD_KV, N_CTX = 2, 64, 128, 4, 2, 128
ROPE_BASE, RMS_EPS = 10000.0, 1e-5
NEW_TOKENS = 16
MIN_GREEDY_MARGIN = 1e-2
# With tied embeddings a residual stream dominated by the input embedding makes the model repeat
# its last token; larger block outputs keep the greedy continuation varied.
EMBD_STD, BLOCK_OUT_GAIN = 0.25, 4.0

# Copied verbatim from SmolLM2-135M-Instruct's GGUF (`tokenizer.chat_template`);
# make_smollm2_reference.py asserts it still equals the real file's. Note the Jinja string
# literals hold real newline characters (Python "\n" here), not backslash-n escapes.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TINY_TEXTS = ["Hello world", "the bread,  42 grams", "I can't"]
TINY_CHATS = {
    "user_generation_prompt": dict(
        messages=[{"role": "user", "content": "Hello world"}], add_generation_prompt=True),
    "system_user_assistant": dict(
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello!"}], add_generation_prompt=False),
}

# FFN tensor types per block: every type appears once as a 64-wide and once as a 128-wide row.
FFN_TYPES = [
    {"ffn_gate": Q.Q4_0, "ffn_up": Q.Q5_0, "ffn_down": Q.F16},
    {"ffn_gate": Q.F16, "ffn_up": Q.Q4_0, "ffn_down": Q.Q5_0},
]
ATTN_TYPE, EMBD_TYPE = Q.Q4_1, Q.Q8_0


def llama_cpp_permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: HF (rotate-half) rows -> ggml (interleaved) rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def llama_cpp_unpermute(weights, n_head):
    """Inverse of llama_cpp_permute for a tensor with n_head heads."""
    return (weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def load_vocab():
    """tokens, token types, merges and special ids from the byte-level BPE tokenizer fixture.
    Its non-special added token ("Hello world", id 480, outside the BPE vocab) is left out."""
    with open(os.path.join(ROOT, TOKENIZER_SOURCE)) as f:
        tj = json.load(f)
    vocab = tj["model"]["vocab"]
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    assert None not in tokens
    special = {a["id"]: a["content"] for a in tj["added_tokens"] if a["special"]}
    assert special == {0: "<|endoftext|>", 1: "<|im_start|>", 2: "<|im_end|>"}, special
    types = [int(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL) for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    return tokens, types, merges, tj["pre_tokenizer"]


def random_weights(rng, vocab_size):
    """HF-layout float32 weights ([out, in]), scaled so every tensor matters."""
    def linear(out_f, in_f, gain=1.0):
        return (gain * rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    head_dim = N_EMBD // N_HEAD
    w = {"token_embd": (EMBD_STD * rng.standard_normal((vocab_size, N_EMBD))).astype(np.float32)}
    for i in range(N_LAYER):
        w[f"blk.{i}.attn_norm"] = norm(N_EMBD)
        w[f"blk.{i}.attn_q"] = linear(N_HEAD * head_dim, N_EMBD)
        w[f"blk.{i}.attn_k"] = linear(N_HEAD_KV * head_dim, N_EMBD)
        w[f"blk.{i}.attn_v"] = linear(N_HEAD_KV * head_dim, N_EMBD)
        w[f"blk.{i}.attn_output"] = linear(N_EMBD, N_HEAD * head_dim, BLOCK_OUT_GAIN)
        w[f"blk.{i}.ffn_norm"] = norm(N_EMBD)
        w[f"blk.{i}.ffn_gate"] = linear(N_FF, N_EMBD)
        w[f"blk.{i}.ffn_up"] = linear(N_FF, N_EMBD)
        w[f"blk.{i}.ffn_down"] = linear(N_EMBD, N_FF, BLOCK_OUT_GAIN)
    w["output_norm"] = norm(N_EMBD)
    return w


def tensor_plan():
    """(gguf name, ggml type) in the order convert_hf_to_gguf.py writes a Llama (HF keys sorted:
    input_layernorm, mlp.down/gate/up, post_attention_layernorm, self_attn.k/o/q/v; norm last)."""
    plan = [("token_embd", EMBD_TYPE)]
    for i in range(N_LAYER):
        ffn = FFN_TYPES[i]
        plan += [
            (f"blk.{i}.attn_norm", Q.F32),
            (f"blk.{i}.ffn_down", ffn["ffn_down"]),
            (f"blk.{i}.ffn_gate", ffn["ffn_gate"]),
            (f"blk.{i}.ffn_up", ffn["ffn_up"]),
            (f"blk.{i}.ffn_norm", Q.F32),
            (f"blk.{i}.attn_k", ATTN_TYPE),
            (f"blk.{i}.attn_output", ATTN_TYPE),
            (f"blk.{i}.attn_q", ATTN_TYPE),
            (f"blk.{i}.attn_v", ATTN_TYPE),
        ]
    plan.append(("output_norm", Q.F32))
    return plan


def write_tiny_gguf(path, weights, tokens, types, merges):
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type("model")
    writer.add_name("Tiny Random Llama")
    writer.add_license("apache-2.0")
    writer.add_block_count(N_LAYER)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_freq_base(ROPE_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_vocab_size(len(tokens))
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_add_space_prefix(False)
    writer.add_add_bos_token(False)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_chat_template(SMOLLM2_CHAT_TEMPLATE)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    stored = {}
    for name, qtype in tensor_plan():
        data = weights[name]
        if name.endswith(".attn_q"):
            data = llama_cpp_permute(data, N_HEAD, N_HEAD)
        elif name.endswith(".attn_k"):
            data = llama_cpp_permute(data, N_HEAD, N_HEAD_KV)
        assert data.shape[-1] % 32 == 0
        packed = gguf.quants.quantize(data, qtype)
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(name + ".weight", packed)
        else:
            writer.add_tensor(name + ".weight", packed, raw_dtype=qtype)
        stored[name] = (qtype, gguf.quants.dequantize(packed, qtype).astype(np.float32).reshape(data.shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return stored


def f32(x):
    """A float whose shortest repr reads back as the same float32."""
    return float(str(np.float32(x)))


def f32_list(t):
    return [f32(v) for v in t.reshape(-1).tolist()] if t.dim() <= 1 else [f32_list(r) for r in t]


def logprobs_of(logits, ids):
    """log p(ids[t+1] | ids[:t+1]) for t = 0 .. len(ids) - 2 (log-softmax over the vocabulary)."""
    lp = torch.log_softmax(logits.float(), dim=-1)
    return lp[:-1].gather(1, torch.tensor(ids[1:]).view(-1, 1)).view(-1)


def greedy(model, prompt, steps, eos_id=None):
    """Cache-free greedy loop; returns (new ids, per-step top-1/top-2 logit gaps)."""
    ids = list(prompt)
    gaps = []
    with torch.no_grad():
        for _ in range(steps):
            last = model(input_ids=torch.tensor([ids])).logits[0, -1]
            top = torch.topk(last, 2).values
            gaps.append(float(top[0] - top[1]))
            ids.append(int(last.argmax()))
            if eos_id is not None and ids[-1] == eos_id:
                break
    return ids[len(prompt):], gaps


def llama_cpp_smollm_tokenizer(tokenizer):
    """The GGUF vocabulary with llama.cpp's `smollm` pre-tokenizer (each digit alone, then the
    GPT-2 regex), the same as Digits(individual_digits) + ByteLevel in HF tokenizers."""
    ref = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    ref.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return ref


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_tiny(out):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = os.path.join(out, "tiny")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "tiny.gguf")
    tokens, types, merges, source_pre = load_vocab()
    rng = np.random.default_rng(TINY_SEED)
    weights = random_weights(rng, len(tokens))
    stored = write_tiny_gguf(path, weights, tokens, types, merges)

    reader = gguf.GGUFReader(path)
    tensors = [{"name": t.name, "type": t.tensor_type.name, "ne": [int(n) for n in t.shape]}
               for t in reader.tensors]

    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="tiny.gguf", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file="tiny.gguf")
    cfg = model.config

    # transformers undoes llama.cpp's Q/K permutation: q_proj / k_proj must equal our own
    # inverse permutation of the dequantised GGUF rows, bit for bit, and every other tensor
    # the plain dequantisation.
    sd = model.state_dict()
    hf_name = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
    for name, (qtype, deq) in stored.items():
        if name == "token_embd":
            key = "model.embed_tokens.weight"
        elif name == "output_norm":
            key = "model.norm.weight"
        else:
            _, i, leaf = name.split(".")
            key = f"model.layers.{i}.{hf_name[leaf]}.weight"
        expect = deq
        if name.endswith("attn_q"):
            expect = llama_cpp_unpermute(deq, N_HEAD)
        elif name.endswith("attn_k"):
            expect = llama_cpp_unpermute(deq, N_HEAD_KV)
        assert np.array_equal(sd[key].numpy(), expect), f"{key} differs from the dequantised {name}"
    assert torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])
    # and the round trip HF -> permute -> quantise -> dequantise -> unpermute stays near HF rows
    q0 = sd["model.layers.0.self_attn.q_proj.weight"].numpy()
    assert np.abs(q0 - weights["blk.0.attn_q"]).max() < 0.2 * np.abs(weights["blk.0.attn_q"]).max()

    ref_tok = llama_cpp_smollm_tokenizer(tokenizer)
    texts = []
    for text in TINY_TEXTS:
        ids = tokenizer.encode(text)
        assert ids == tokenizer.encode(text, add_special_tokens=False)  # add_bos_token false
        ref_ids = ref_tok.encode(text).ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        texts.append({
            "text": text,
            "ids": ids,
            "tokens": tokenizer.convert_ids_to_tokens(ids),
            "ids_llama_cpp_smollm": ref_ids,
            "same_as_llama_cpp_smollm": ref_ids == ids,
            "logprobs": f32_list(logprobs_of(logits, ids)),
            "logits": f32_list(logits),
        })

    chats = {}
    for name, spec in TINY_CHATS.items():
        text = tokenizer.apply_chat_template(spec["messages"], tokenize=False,
                                             add_generation_prompt=spec["add_generation_prompt"])
        ids = tokenizer.apply_chat_template(spec["messages"], tokenize=True, return_dict=False,
                                            add_generation_prompt=spec["add_generation_prompt"])
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        assert ids == tokenizer.encode(text, add_special_tokens=False)
        chats[name] = {**spec, "text": text, "ids": ids}

    prompt = chats["user_generation_prompt"]["ids"]
    assert len(prompt) + NEW_TOKENS <= N_CTX, len(prompt)
    new_ids, gaps = greedy(model, prompt, NEW_TOKENS)
    with torch.no_grad():
        p = torch.tensor([prompt])
        generated = model.generate(p, attention_mask=torch.ones_like(p), max_new_tokens=NEW_TOKENS,
                                   do_sample=False, eos_token_id=None, pad_token_id=2)
    assert generated[0, len(prompt):].tolist() == new_ids, (generated, new_ids)
    margin = min(gaps)
    assert margin >= MIN_GREEDY_MARGIN, f"greedy near-tie ({margin}); change TINY_SEED"

    info = {
        "file": "tiny.gguf",
        "file_bytes": os.path.getsize(path),
        "sha256": sha256(path),
        "seed": TINY_SEED,
        "tokenizer_source": TOKENIZER_SOURCE + " (BPE vocab ids 0-479 and merges; its non-special "
                            "added token 'Hello world' is not included)",
        "metadata": {
            "general.architecture": "llama",
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.pre": "smollm",
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.padding_token_id": 2,
            "tokenizer.ggml.add_bos_token": False,
            "tokenizer.chat_template": SMOLLM2_CHAT_TEMPLATE,
            "vocab_size": len(tokens), "merges": len(merges),
            "control_token_ids": [i for i, t in enumerate(types) if t == int(gguf.TokenType.CONTROL)],
        },
        "tensors": tensors,
        "qk_permutation": "attn_q / attn_k rows are stored permuted as llama.cpp's converter does "
                          "(reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2), n_head_kv heads for "
                          "attn_k); transformers inverts it on load (verified bit for bit)",
        "config": {
            "model_type": cfg.model_type,
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": getattr(cfg, "head_dim", N_EMBD // N_HEAD),
            "rope_theta": cfg.rope_parameters["rope_theta"],
            "rms_norm_eps": f32(cfg.rms_norm_eps),
            "max_position_embeddings": cfg.max_position_embeddings,
            "tie_word_embeddings": bool(cfg.tie_word_embeddings),
            "bos_token_id": cfg.bos_token_id,
            "eos_token_id": cfg.eos_token_id,
            "pad_token_id": cfg.pad_token_id,
        },
        "tokenizer": {
            "transformers_pre_tokenizer": json.loads(tokenizer.backend_tokenizer.to_str())["pre_tokenizer"],
            "note": "transformers has no split regex for pre 'smollm', so it keeps GPT2Tokenizer's "
                    "ByteLevel GPT-2 regex and does not split digits; llama.cpp splits each digit "
                    "first. ids_llama_cpp_smollm emulates llama.cpp (Digits(individual) + ByteLevel). "
                    "The source fixture's own pre-tokenizer (Qwen2 regex) is not used by either.",
            "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
            "pad_token": tokenizer.pad_token, "unk_token": tokenizer.unk_token,
        },
        "logprob_definition": "logprobs[t] = log_softmax(logits[t])[ids[t + 1]], t = 0 .. len(ids) - 2",
        "texts": texts,
        "chat_template": chats,
        "generation": {
            "prompt": "chat_template.user_generation_prompt.ids",
            "prompt_ids": prompt,
            "max_new_tokens": NEW_TOKENS,
            "do_sample": False,
            "eos_stop": False,
            "new_ids": new_ids,
            "top2_logit_gaps": [f32(g) for g in gaps],
            "min_top2_logit_margin": f32(margin),
        },
        "generated_by": versions(),
    }
    with open(os.path.join(folder, "expected.json"), "w") as f:
        f.write(to_json(info) + "\n")
    size = folder_size(folder)
    assert size < 300_000, f"{folder} is {size} bytes"
    print(f"tiny: {info['file_bytes']} byte gguf, greedy margin {margin:.4f}, {size} bytes in all; "
          f"ids equal to llama.cpp smollm: {[t['same_as_llama_cpp_smollm'] for t in texts]}")


# --- shared ------------------------------------------------------------------------------

def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "unknown"


def versions():
    return (f"torch {torch.__version__}, transformers {transformers.__version__}, "
            f"tokenizers {tokenizers.__version__}, gguf {gguf_version()}, numpy {np.__version__}")


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def to_json(value, indent=0):
    """JSON for the fixtures: one item per line, lists of numbers on one line, text kept as UTF-8."""
    return common_to_json(value, indent, ensure_ascii=False)


PARTS = {"quant": write_quant, "tiny": write_tiny}


def main():
    fixture_main(__doc__.splitlines()[0], os.path.join(ROOT, "Tests", "CheckpointsTests", "Fixtures", "gguf"), PARTS)


if __name__ == "__main__":
    main()
