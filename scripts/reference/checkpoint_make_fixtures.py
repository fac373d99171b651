#!/usr/bin/env python3
"""Makes tiny random Hugging Face models for the checkpoint import/export tests.

Writes, under OUT (default Tests/CheckpointsTests/Fixtures):
  gpt2/   tiny GPT2LMHeadModel   (config.json, model.safetensors)
  llama/  tiny LlamaForCausalLM with grouped-query attention, untied head
  qwen2/  tiny Qwen2ForCausalLM (q/k/v bias, tied embeddings)
  expected_logits.json  {family: {"ids": [...], "logits": [[...]]}} from transformers, fp32

Install: pip install torch==2.13.0+cpu transformers peft tokenizers safetensors h5py
Run offline: HF_HUB_OFFLINE=1 python3 scripts/reference/checkpoint_make_fixtures.py [OUT]
"""
import json
import os
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

IDS = [3, 17, 42, 5, 99, 0, 64]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/CheckpointsTests/Fixtures"
    torch.manual_seed(0)
    models = {
        "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                           bos_token_id=0, eos_token_id=1)),
        "llama": LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                              tie_word_embeddings=False)),
        "qwen2": Qwen2ForCausalLM(Qwen2Config(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                              tie_word_embeddings=True)),
    }
    expected = {}
    for name, model in models.items():
        model.eval()
        # Random init leaves biases at zero and norms at one; perturb them so every tensor matters.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.02 * torch.randn_like(p))
        path = os.path.join(out, name)
        model.save_pretrained(path, safe_serialization=True)
        with torch.no_grad():
            logits = model(torch.tensor([IDS])).logits[0]
        expected[name] = {"ids": IDS, "logits": logits.tolist()}
    with open(os.path.join(out, "expected_logits.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
