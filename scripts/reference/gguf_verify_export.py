#!/usr/bin/env python3
"""Checks a GGUF file exported by SafeTune against transformers' GGUF loader.

  (i)   reads the file with gguf.GGUFReader and prints its tensor types and key metadata;
  (ii)  loads it with transformers (`AutoModelForCausalLM.from_pretrained(folder, gguf_file=...,
        dtype=torch.float32)`), timing the load;
  (iii) computes per-token log-probs for the token ids in SafeTune's JSON and prints the largest
        absolute difference; exits 1 if it is above --tol.

SafeTune's JSON: {"texts": [{"ids": [...], "logprobs": [...]}, ...]} with
logprobs[t] = log p(ids[t + 1] | ids[:t + 1]) (natural log, len(ids) - 1 values; a list of
len(ids) values whose first entry is null is accepted too).

Also: --write-logprobs FILE writes transformers' log-probs for those ids (or for --ids-from,
a reference.json with a "logprobs" list) in the same format, and --write-f32 SRC writes --gguf as
an all-F32 copy of SRC (every tensor dequantised with gguf.quants, metadata copied, file type
ALL_F32), which gives an unquantised GGUF of a quantised model.

Requirements (CPU build of torch; the unpinned name pulls a multi-GB CUDA build):
    pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
    pip install transformers tokenizers gguf numpy
Run from the repository root, offline:
    HF_HUB_OFFLINE=1 python3 scripts/reference/gguf_verify_export.py --gguf model.gguf \\
        --safetune-logprobs logprobs.json [--tol 1e-3]
    HF_HUB_OFFLINE=1 python3 scripts/reference/gguf_verify_export.py --write-f32 model.Q4_1.gguf \\
        --gguf model.f32.gguf
"""

import argparse
import json
import os
import sys
import time
from collections import Counter

import gguf
import numpy as np
import torch
import transformers

KEY_METADATA = [
    "general.architecture", "general.name", "general.file_type", "general.quantization_version",
    "general.alignment",
    "{arch}.block_count", "{arch}.context_length", "{arch}.embedding_length",
    "{arch}.feed_forward_length", "{arch}.attention.head_count", "{arch}.attention.head_count_kv",
    "{arch}.attention.key_length", "{arch}.attention.value_length", "{arch}.rope.freq_base",
    "{arch}.rope.dimension_count", "{arch}.attention.layer_norm_rms_epsilon", "{arch}.vocab_size",
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix",
]


def field_value(field):
    value = field.contents()
    if isinstance(value, list):
        return f"[{len(value)} items]"
    return value


def describe(path, list_tensors):
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes, GGUF v{reader.fields['GGUF.version'].contents()}, "
          f"{len(reader.tensors)} tensors, {len(reader.fields)} fields, tensor data at {reader.data_offset}")
    for key in KEY_METADATA:
        key = key.format(arch=arch)
        if key in reader.fields:
            print(f"  {key} = {field_value(reader.fields[key])!r}")
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
        if key in reader.fields:
            print(f"  {key}: {len(reader.fields[key].data)} entries")
    if "tokenizer.chat_template" in reader.fields:
        print(f"  tokenizer.chat_template: {len(reader.fields['tokenizer.chat_template'].contents())} characters")
    types = Counter(t.tensor_type.name for t in reader.tensors)
    print("  tensor types: " + ", ".join(f"{name} x{count}" for name, count in sorted(types.items())))
    tied = all(t.name != "output.weight" for t in reader.tensors)
    print(f"  output.weight {'absent (tied embeddings)' if tied else 'present'}")
    for t in reader.tensors if list_tensors else []:
        print(f"    {t.name:32s} {t.tensor_type.name:6s} ne={[int(n) for n in t.shape]}")
    return reader


def load_model(path):
    from transformers import AutoModelForCausalLM
    folder, name = os.path.split(os.path.abspath(path))
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    seconds = time.time() - t0
    print(f"transformers {transformers.__version__} loaded {name} in {seconds:.1f} s "
          f"({model.config.model_type}, {sum(p.numel() for p in model.parameters())} parameters)")
    return model


def logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)[:-1]
    return lp.gather(1, torch.tensor(ids[1:]).view(-1, 1)).view(-1)


def read_texts(path):
    """[{"ids": [...], "logprobs": [...]}, ...] from SafeTune's format, or the scored texts
    (its "logprobs" list) of a reference.json written by make_smollm2_reference.py."""
    with open(path) as f:
        data = json.load(f)
    texts = data.get("texts")
    if texts and all("logprobs" in t for t in texts):
        return texts
    if isinstance(data.get("logprobs"), list):
        return data["logprobs"]
    sys.exit(f"{path}: no texts with ids and logprobs")


def compare(model, texts, tol):
    worst = 0.0
    for index, text in enumerate(texts):
        ids = [int(i) for i in text["ids"]]
        theirs = text["logprobs"]
        if len(theirs) == len(ids) and theirs[0] is None:
            theirs = theirs[1:]
        if len(theirs) != len(ids) - 1:
            sys.exit(f"text {index}: {len(ids)} ids but {len(theirs)} log-probs (want {len(ids) - 1})")
        ours = logprobs(model, ids).double()
        # Read theirs as float32 (the precision both sides compute in): a float32 written in its
        # shortest decimal form is off by up to half a float32 ulp when parsed as a double.
        diff = (ours - torch.tensor(theirs, dtype=torch.float32).double()).abs()
        at = int(diff.argmax())
        worst = max(worst, float(diff.max()))
        print(f"  text {index} ({len(ids)} tokens): max |diff| {float(diff.max()):.3e} at t={at}, "
              f"sum logprob transformers {float(ours.sum()):.5f}")
    print(f"max |log-prob difference| = {worst:.3e} (tolerance {tol:g})")
    return worst


def write_f32(src, dst):
    """Every tensor of src dequantised to float32 with gguf.quants, metadata copied."""
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.file_type":
            value = int(gguf.LlamaFileType.ALL_F32)
        writer.add_key_value(field.name, value, vtype, sub_type=sub_type)
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape))  # numpy order: ne[n-1] ... ne[0]
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False).reshape(shape)
        writer.add_tensor(t.name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True, help="the GGUF file to check (or to write, with --write-f32)")
    parser.add_argument("--safetune-logprobs", help="SafeTune's log-probs JSON")
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--list-tensors", action="store_true")
    parser.add_argument("--write-logprobs", help="write transformers' log-probs for the same ids here")
    parser.add_argument("--ids-from", help="take the ids from this JSON instead of --safetune-logprobs")
    parser.add_argument("--write-f32", metavar="SRC", help="first write --gguf as an all-F32 copy of SRC")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    if args.write_f32:
        t0 = time.time()
        write_f32(args.write_f32, args.gguf)
        print(f"wrote {args.gguf} ({os.path.getsize(args.gguf)} bytes) in {time.time() - t0:.1f} s")

    describe(args.gguf, args.list_tensors)
    source = args.safetune_logprobs or args.ids_from
    if not source:
        return
    model = load_model(args.gguf)
    texts = read_texts(args.ids_from or args.safetune_logprobs)

    if args.write_logprobs:
        out = {"texts": [{"ids": [int(i) for i in t["ids"]],
                          "logprobs": [float(v) for v in logprobs(model, [int(i) for i in t["ids"]])]}
                         for t in texts]}
        with open(args.write_logprobs, "w") as f:
            json.dump(out, f)
        print(f"wrote transformers' log-probs for {len(texts)} texts to {args.write_logprobs}")

    if args.safetune_logprobs:
        worst = compare(model, read_texts(args.safetune_logprobs), args.tol)
        if not worst <= args.tol:  # also fails on NaN
            print("FAIL: above tolerance")
            sys.exit(1)
        print("OK")


if __name__ == "__main__":
    main()
