#!/usr/bin/env python3
"""PyTorch + PEFT side of SafeTune's fine-tuning benchmark (scripts/bench-finetune).

One epoch of LoRA on SmolLM2-135M-Instruct (float32, from the cached GGUF through
transformers' loader) over a JSONL file of {"prompt", "completion"} records, set up as a
practitioner would on a CPU:
  - each record rendered with the model's chat template (system turn included), the loss on
    the answer tokens only (prompt tokens labelled -100), at most --seq-len tokens;
  - LoRA r --rank, alpha 2·r, dropout 0, on q/k/v/o_proj and gate/up/down_proj;
  - AdamW (lr --lr, weight decay 0), constant learning rate, gradients clipped to norm 1
    (transformers' default), batch --batch;
  - batches grouped by length (transformers' LengthGroupedSampler scheme: a seeded shuffle,
    mega-batches of 50 batches each sorted by length, padded to their longest row), so
    little compute goes to padding; --grouping none pads random batches instead.
Prints one JSON object: load and training seconds, tokens, examples, peak RSS, final loss.

Requirements: torch==2.13.0+cpu, transformers, peft (scripts/reference/README.md).
Usage:
    python3 scripts/reference/finetune_torch.py --data train.jsonl --threads 2
"""

import argparse
import json
import random
import resource
import time

from common import smollm2_gguf_path


def main():
    parser = argparse.ArgumentParser(description="LoRA fine-tuning of SmolLM2 with PyTorch + PEFT, timed")
    parser.add_argument("--data", required=True)
    parser.add_argument("--gguf", default=None, help="default: the SafeTune model cache's SmolLM2 file")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grouping", choices=["length", "none"], default="length")
    args = parser.parse_args()

    import os

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    path = args.gguf or smollm2_gguf_path()
    start = time.perf_counter()
    folder, name = os.path.dirname(path), os.path.basename(path)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"]))
    examples = []
    with open(args.data) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            user = [{"role": "user", "content": r["prompt"]}]
            prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
            full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": r["completion"]}], tokenize=False)
            p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            ids = tokenizer(full, add_special_tokens=False)["input_ids"][: args.seq_len]
            labels = [-100] * min(len(p), len(ids)) + ids[len(p):]
            examples.append((ids, labels))
    load_seconds = time.perf_counter() - start

    order = list(range(len(examples)))
    random.Random(args.seed).shuffle(order)
    if args.grouping == "length":
        mega = 50 * args.batch
        order = [i for k in range(0, len(order), mega)
                 for i in sorted(order[k:k + mega], key=lambda i: -len(examples[i][0]))]
    batches = [order[k:k + args.batch] for k in range(0, len(order), args.batch)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    model.train()
    tokens = trained = 0
    loss_value = float("nan")
    start = time.perf_counter()
    for batch in batches:
        width = max(len(examples[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, i in enumerate(batch):
            x, y = examples[i]
            ids[r, :len(x)] = torch.tensor(x)
            labels[r, :len(y)] = torch.tensor(y)
            mask[r, :len(x)] = 1
            tokens += len(x)
            trained += sum(1 for t in y[1:] if t != -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
    train_seconds = time.perf_counter() - start
    print(json.dumps(dict(side="pytorch", examples=len(examples), steps=len(batches), tokens=tokens, trained_tokens=trained,
                          load_seconds=load_seconds, train_seconds=train_seconds, tokens_per_s=tokens / train_seconds,
                          final_loss=loss_value, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          grouping=args.grouping, rank=args.rank, batch=args.batch, threads=args.threads,
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
