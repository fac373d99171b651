#!/usr/bin/env python3
"""Writes the reference fixtures under Tests/ModelsTests/Fixtures/ from PyTorch + transformers.

Each fixture is a tiny, randomly initialised (seeded) causal language model saved the way
transformers saves it, plus the outputs SafeTune must reproduce: logits, the shifted
causal-LM loss, the gradient of that loss for every parameter, a greedy generation and a
few hidden states.

Requirements (CPU build of torch; the unpinned name pulls a multi-GB CUDA build):
    pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
    pip install transformers peft tokenizers safetensors h5py
Run from the repository root, offline:
    HF_HUB_OFFLINE=1 python3 scripts/reference/make_model_fixtures.py
Options: --out DIR (default Tests/ModelsTests/Fixtures), --only NAME[,NAME] , --check
(regenerate into a temporary folder and compare with the committed files).
"""

import copy
import json
import math
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from common import fixture_main, to_json

VOCAB = 128
BATCH, SEQ = 2, 9
PROMPT_LEN, NEW_TOKENS = 5, 12
# (row, position) pairs whose label is -100. Position 0 is included on purpose: after the
# shift it is never a target, so it must not change the loss.
IGNORED_LABELS = [(0, 3), (0, 6), (1, 0), (1, 8)]
# Smallest gap between the best and second-best logit accepted at every greedy step, so a
# float32 implementation with a different summation order cannot pick another token.
MIN_GREEDY_MARGIN = 1e-2


def gpt2_model():
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1,
    )
    return GPT2LMHeadModel(config)


def llama_model():
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2,
    )
    return LlamaForCausalLM(config)


def qwen2_model():
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1,
    )
    return Qwen2ForCausalLM(config)


def randomise(model, generator):
    """Replaces the default init (std 0.02, unit norms, zero biases) with values large
    enough that every parameter visibly affects the outputs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            leaf = name.split(".")[-2]
            if name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif p.dim() == 1:  # LayerNorm / RMSNorm gains
                p.copy_(1.0 + 0.2 * noise)
            elif leaf in ("wte", "wpe", "embed_tokens"):
                p.copy_(0.25 * noise)
            else:
                # Linear [out, in] or GPT-2 Conv1D [in, out]: scale by fan-in either way.
                fan_in = p.shape[0] if model.config.model_type == "gpt2" else p.shape[1]
                p.copy_(noise / math.sqrt(fan_in))


def final_norm(model):
    return model.transformer.ln_f if model.config.model_type == "gpt2" else model.model.norm


def blocks(model):
    return model.transformer.h if model.config.model_type == "gpt2" else model.model.layers


def fixed_batch(generator):
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    labels = input_ids.clone()
    for row, pos in IGNORED_LABELS:
        labels[row, pos] = -100
    return input_ids, labels


def greedy_reference(model, prompt):
    """Greedy decoding by full recomputation (no cache), also returning the smallest
    top-1/top-2 logit gap seen, to cross-check generate() and reject near-ties."""
    ids = prompt.clone()
    margin = float("inf")
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            last = model(input_ids=ids).logits[0, -1]
            top = torch.topk(last, 2).values
            margin = min(margin, float(top[0] - top[1]))
            ids = torch.cat([ids, last.argmax().view(1, 1)], dim=1)
    return ids, margin


def compute_expected(model, input_ids, labels):
    """Runs the model in float32 and returns (tensors for expected.safetensors, json dict)."""
    model.eval()
    captured = {}
    hooks = [final_norm(model).register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("hidden.final_norm", out))]
    for i, block in enumerate(blocks(model)):
        hooks.append(block.register_forward_hook(
            lambda _m, _i, out, i=i: captured.__setitem__(
                f"hidden.block.{i}", out[0] if isinstance(out, tuple) else out)))
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, labels=labels)
    out.loss.backward()
    for h in hooks:
        h.remove()

    # Independent check of the loss definition written into expected.json.
    shifted_logits = out.logits[:, :-1, :].reshape(-1, VOCAB)
    shifted_targets = labels[:, 1:].reshape(-1)
    counted = int((shifted_targets != -100).sum())
    manual = torch.nn.functional.cross_entropy(shifted_logits, shifted_targets, ignore_index=-100, reduction="sum") / counted
    assert torch.allclose(manual, out.loss, rtol=1e-6, atol=1e-6), (manual, out.loss)

    tensors = {"logits": out.logits.detach().contiguous()}
    for key, value in captured.items():
        tensors[key] = value[0].detach().contiguous()  # row 0 only: [SEQ, hidden]
    names = []
    for name, p in model.named_parameters():  # tied parameters appear once
        assert p.grad is not None, name
        tensors[f"grad.{name}"] = p.grad.detach().contiguous()
        names.append(name)
    model.zero_grad(set_to_none=True)

    prompt = input_ids[:1, :PROMPT_LEN]
    with torch.no_grad():
        generated = model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW_TOKENS,
            do_sample=False, eos_token_id=None, pad_token_id=0,
        )
    reference, margin = greedy_reference(model, prompt)
    assert torch.equal(generated, reference), (generated, reference)
    assert generated.shape[1] == PROMPT_LEN + NEW_TOKENS
    assert margin >= MIN_GREEDY_MARGIN, f"greedy near-tie ({margin}); change the seed"

    info = {
        "input_ids": input_ids.tolist(),
        "labels": labels.tolist(),
        "loss": out.loss.item(),
        "loss_definition": (
            "transformers causal-LM loss: logits[:, :-1] predict labels[:, 1:]; cross-entropy "
            "(natural log, log-softmax over the vocabulary) summed over shifted targets != -100 "
            "and divided by their count (mean over non-ignored shifted targets, whole batch)"
        ),
        "loss_target_count": counted,
        "ignore_index": -100,
        "gradient_names": names,
        "generation": {
            "prompt_ids": prompt[0].tolist(),
            "max_new_tokens": NEW_TOKENS,
            "do_sample": False,
            "eos_stop": False,
            "output_ids": generated[0].tolist(),
            "min_top2_logit_margin": margin,
        },
        "tensors": {k: {"shape": list(v.shape), "dtype": "float32"} for k, v in tensors.items()},
    }
    return tensors, info


def make_older_style(config_path):
    """Rewrites a transformers 5 config.json the way transformers 4 wrote it: a top-level
    rope_theta and no rope_parameters block."""
    with open(config_path) as f:
        config = json.load(f)
    rope = config.pop("rope_parameters")
    assert rope.get("rope_type", "default") == "default", rope
    config["rope_theta"] = rope["rope_theta"]
    config["rope_scaling"] = None
    config.pop("layer_types", None)
    config["transformers_version"] = "4.46.0"
    config["torch_dtype"] = config.pop("dtype")
    with open(config_path, "w") as f:
        json.dump(dict(sorted(config.items())), f, indent=2)
        f.write("\n")


def reload_check(folder, expected, input_ids):
    """Loads the written folder back through transformers and checks it reproduces the logits."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits
    diff = float((logits - expected["logits"]).abs().max())
    assert diff <= 1e-5, f"{folder}: reloaded model differs by {diff}"
    return model


def write_fixture(root, name, build, seed, *, post=None, fp16=False):
    folder = os.path.join(root, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build()
    randomise(model, generator)
    input_ids, labels = fixed_batch(generator)
    model.eval()

    if fp16:
        # Store float16 weights; the expected outputs use those rounded weights in float32.
        half = copy.deepcopy(model).half()
        half.save_pretrained(folder)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    else:
        model.save_pretrained(folder)
    if post:
        post(os.path.join(folder, "config.json"))

    tensors, info = compute_expected(model, input_ids, labels)
    info = {
        "name": name,
        "model_type": model.config.model_type,
        "weights_dtype": "float16" if fp16 else "float32",
        "seed": seed,
        "config_style": "older (top-level rope_theta)" if post else (
            "transformers 5" if model.config.model_type != "gpt2" else "gpt2"),
        "attention": "causal self-attention over all positions (no padding, no attention mask)",
        **info,
        "generated_by": f"torch {torch.__version__}, transformers {transformers.__version__}",
    }
    save_file(tensors, os.path.join(folder, "expected.safetensors"))
    with open(os.path.join(folder, "expected.json"), "w") as f:
        f.write(to_json(info) + "\n")

    config = AutoConfig.from_pretrained(folder)
    if post:
        assert "rope_theta" in json.load(open(os.path.join(folder, "config.json")))
    if model.config.model_type != "gpt2":
        assert config.rope_parameters["rope_theta"] == model.config.rope_parameters["rope_theta"]
    reloaded = reload_check(folder, tensors, input_ids)
    if fp16:
        stored = load_file(os.path.join(folder, "model.safetensors"))
        assert all(t.dtype == torch.float16 for t in stored.values())
    del reloaded
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    assert size < 1_000_000, f"{folder} is {size} bytes"
    print(f"{name}: loss {info['loss']:.6f}, {len(info['gradient_names'])} gradients, "
          f"generation margin {info['generation']['min_top2_logit_margin']:.4f}, {size} bytes")


FIXTURES = {
    "gpt2": dict(build=gpt2_model, seed=1),
    "llama": dict(build=llama_model, seed=2),
    "qwen2": dict(build=qwen2_model, seed=3, post=make_older_style),
    "llama_fp16": dict(build=llama_model, seed=2, fp16=True),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parts = {name: (lambda out, name=name: write_fixture(out, name, **FIXTURES[name])) for name in FIXTURES}
    fixture_main(__doc__.splitlines()[0], os.path.join(here, "..", "..", "Tests", "ModelsTests", "Fixtures"), parts)


if __name__ == "__main__":
    main()
