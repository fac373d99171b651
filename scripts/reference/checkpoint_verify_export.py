#!/usr/bin/env python3
"""Loads a Hugging Face folder exported by SafeTune with transformers and prints logits as JSON.

  checkpoint_verify_export.py DIR --ids 3,17,42 [--peft PEFT_DIR] [--compare EXPECTED_JSON --key NAME]

Prints {"logits": [[...]]} for the base model. With --peft, also loads the adapter with
PEFT and prints "peft_logits" plus "merge_max_abs_diff": the largest difference between
PEFT's logits and those of the base with W + (alpha/r) * B @ A merged by hand, which is 0
up to rounding only when the adapter tensors are named and laid out as PEFT expects.
With --compare, exits 1 unless the base logits equal EXPECTED_JSON[NAME]["logits"] exactly.

Install: pip install torch==2.13.0+cpu transformers peft tokenizers safetensors h5py
Run offline: HF_HUB_OFFLINE=1 python3 scripts/reference/checkpoint_verify_export.py DIR --ids 1,2,3
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--ids", required=True)
    parser.add_argument("--peft")
    parser.add_argument("--compare")
    parser.add_argument("--key")
    args = parser.parse_args()
    ids = [int(x) for x in args.ids.split(",")]

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    base = logits_of(model, ids)
    out = {"logits": base.tolist()}

    if args.peft:
        from peft import PeftModel
        from safetensors.torch import load_file

        config = json.load(open(f"{args.peft}/adapter_config.json"))
        scale = config["lora_alpha"] / config["r"]
        tensors = load_file(f"{args.peft}/adapter_model.safetensors")
        merged = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
        params = dict(merged.named_parameters())
        with torch.no_grad():
            for name, a in tensors.items():
                if ".lora_A." not in name:
                    continue
                module = name[len("base_model.model."):].split(".lora_A.")[0]
                b = tensors[name.replace(".lora_A.", ".lora_B.")]
                delta = scale * (b @ a)  # [out, in]
                weight = params[module + ".weight"]
                weight += delta.T if config.get("fan_in_fan_out") else delta
        peft_model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32), args.peft).eval()
        peft_logits = logits_of(peft_model, ids)
        out["peft_logits"] = peft_logits.tolist()
        out["merge_max_abs_diff"] = float((peft_logits - logits_of(merged, ids)).abs().max())
        out["peft_changes_logits"] = bool((peft_logits != base).any())

    if args.compare:
        expected = torch.tensor(json.load(open(args.compare))[args.key]["logits"])
        out["equal_to_expected"] = bool(torch.equal(expected, base))
        out["max_abs_diff"] = float((expected - base).abs().max())
    print(json.dumps(out))
    if args.compare and not out["equal_to_expected"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
