#!/usr/bin/env python3
"""PyTorch + PEFT side of SafeTune's side-by-side benchmark (CPU, float32, GPT-2 shapes).

For each configuration it times, in a fresh subprocess per (configuration, mode) so that
peak memory of one mode never leaks into another:
  lora_train  one LoRA training step: forward, causal-LM loss, backward, AdamW step
  full_train  the same step updating every parameter
  forward     forward pass only, under torch.no_grad(), logits for every position
  generate    greedy decoding with the KV cache: batch 1, 16-token prompt, 64 new tokens
Each mode runs --warmup untimed repetitions, then --steps timed ones; the median is reported.

Model: transformers GPT2LMHeadModel, randomly initialised (seed 0), dropout 0 everywhere
(the comparison measures arithmetic, not RNG), default attention implementation (sdpa),
tied lm_head. Inputs: uniform random token ids, labels = input ids (transformers shifts
them), so every training step sees batch * (context - 1) targets.
LoRA (peft): r 8, lora_alpha 16, lora_dropout 0, bias "none", fan_in_fan_out True (GPT-2
Conv1D), target_modules ["c_attn", "c_proj", "c_fc"], which in every block adapts
attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj (peft matches the name suffix "c_proj"
in both places); embeddings, norms and lm_head stay frozen.
Optimizer: torch.optim.AdamW(lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01,
the torch defaults) over the trainable parameters only; zero_grad(set_to_none=True).

Extra configurations (the shipped SafeTune model, Llama family) come as JSON through
--shape NAME='{"family": "llama", "layers": 4, "d_model": 192, "heads": 6, "kv_heads": 2,
"d_ff": 512, "vocab": 2048, "context": 128, "batch": 8, "tie": false}' (the keys
`safetune bench --json` prints; scripts/bench-compare passes them). A Llama-family model is
transformers' LlamaForCausalLM with LoRA on q/k/v/o_proj and gate/up/down_proj.

Configuration `smollm2` is the real SmolLM2-135M-Instruct (30 blocks, d 576, 9 heads, 3 KV
heads, FFN 1536, vocab 49152, tied embeddings), loaded from the cached GGUF that scripts/setup
fetches ($SAFETUNE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/safetune, then
models/SmolLM2-135M-Instruct.Q4_1.gguf; --smollm2-gguf FILE overrides) through transformers'
GGUF loader in float32: batch 8, context 128, the same LoRA (Llama targets), AdamW and
generate settings as above. peak_rss_mb includes the GGUF load; peak_rss_after_load_mb is
the peak right after it.

Requirements:
    pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
    pip install transformers peft
Usage (offline):
    HF_HUB_OFFLINE=1 python3 scripts/reference/bench_torch.py --threads 2 --configs 7m,1m --json
    HF_HUB_OFFLINE=1 python3 scripts/reference/bench_torch.py --configs smollm2 --steps 3
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

from common import SMOLLM2_FILE, smollm2_gguf_path, time_repetitions

CONFIGS = {
    # name: layers, d_model, heads, vocab, context, batch
    "1m": dict(layers=4, d_model=128, heads=4, vocab=2048, context=128, batch=8),
    "7m": dict(layers=6, d_model=256, heads=8, vocab=8192, context=256, batch=8),
    "124m": dict(layers=12, d_model=768, heads=12, vocab=50257, context=256, batch=2),
    # The real model from its GGUF; the shape is the file's (checked after loading).
    "smollm2": dict(family="llama", gguf=True, layers=30, d_model=576, heads=9, kv_heads=3, d_ff=1536,
                    vocab=49152, context=128, batch=8, tie=True),
}
MODES = ["lora_train", "full_train", "forward", "generate"]
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", fan_in_fan_out=True,
            target_modules=["c_attn", "c_proj", "c_fc"])
ADAMW = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GEN_PROMPT, GEN_NEW = 16, 64
SHAPE_KEYS = {"family", "layers", "d_model", "heads", "kv_heads", "d_ff", "vocab", "context", "batch", "tie"}


def add_shape(text):
    """Registers a configuration given as NAME=JSON (see the module docstring)."""
    name, _, spec = text.partition("=")
    try:
        shape = json.loads(spec)
    except json.JSONDecodeError as e:
        sys.exit(f"--shape {name}: not JSON ({e})")
    missing = {"layers", "d_model", "heads", "vocab", "context", "batch"} - shape.keys()
    if not name or missing:
        sys.exit(f"--shape {name or '?'}: missing {', '.join(sorted(missing)) or 'a NAME= prefix'}")
    CONFIGS[name] = {k: v for k, v in shape.items() if k in SHAPE_KEYS}


def missing_gguf_message(path):
    return f"error: {path} not found; run scripts/setup to fetch it, or pass --smollm2-gguf FILE"


def load_gguf_llama(path, c):
    """Loads a Llama-family GGUF in float32 and checks its shape against the configuration."""
    import torch
    from transformers import AutoModelForCausalLM

    folder, name = os.path.split(os.path.abspath(path))
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    load_s = time.perf_counter() - start
    cfg = model.config
    found = dict(layers=cfg.num_hidden_layers, d_model=cfg.hidden_size, heads=cfg.num_attention_heads,
                 kv_heads=cfg.num_key_value_heads, d_ff=cfg.intermediate_size, vocab=cfg.vocab_size,
                 tie=bool(cfg.tie_word_embeddings))
    wrong = {k: (c[k], v) for k, v in found.items() if c.get(k) != v}
    if cfg.model_type != "llama" or wrong:
        sys.exit(f"error: {path} is not the expected model (model_type {cfg.model_type}; expected, found: {wrong})")
    # Llama has no dropout layers; attention dropout must be 0 so training measures arithmetic only.
    cfg.attention_dropout = 0.0
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.0
        if isinstance(module, torch.nn.Dropout) and module.p != 0:
            sys.exit(f"error: {path} has a dropout layer with p {module.p}")
    return model, load_s


def current_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(config_name, mode, threads, steps, warmup, smollm2_gguf):
    """Runs one (configuration, mode) measurement and prints one JSON object."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = CONFIGS[config_name]
    lora_settings = dict(LORA)
    extra = {}
    if c.get("gguf"):
        if not os.path.isfile(smollm2_gguf):
            sys.exit(missing_gguf_message(smollm2_gguf))
        model, load_s = load_gguf_llama(smollm2_gguf, c)
        lora_settings.update(fan_in_fan_out=False, target_modules=LLAMA_TARGETS)
        extra = {"gguf": os.path.basename(smollm2_gguf), "load_s": round(load_s, 2),
                 "kv_heads": c["kv_heads"], "d_ff": c["d_ff"], "tie": c["tie"],
                 "peak_rss_after_load_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        torch.manual_seed(0)  # inputs independent of whatever the loader drew
    elif c.get("family", "gpt2") == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM
        config = LlamaConfig(
            vocab_size=c["vocab"], hidden_size=c["d_model"], intermediate_size=c["d_ff"],
            num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
            num_key_value_heads=c.get("kv_heads", c["heads"]),
            max_position_embeddings=max(c["context"], GEN_PROMPT + GEN_NEW),
            tie_word_embeddings=c.get("tie", False), attention_dropout=0.0,
            bos_token_id=c["vocab"] - 1, eos_token_id=c["vocab"] - 1,
        )
        model = LlamaForCausalLM(config)
        lora_settings.update(fan_in_fan_out=False, target_modules=LLAMA_TARGETS)
    else:
        config = GPT2Config(
            vocab_size=c["vocab"], n_positions=max(c["context"], GEN_PROMPT + GEN_NEW),
            n_embd=c["d_model"], n_layer=c["layers"], n_head=c["heads"],
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=c["vocab"] - 1, eos_token_id=c["vocab"] - 1,
        )
        model = GPT2LMHeadModel(config)
    total_params = sum(p.numel() for p in model.parameters())
    rss_model_mb = current_rss_mb()
    row = {"config": config_name, "mode": mode, "threads": threads, "layers": c["layers"],
           "d_model": c["d_model"], "heads": c["heads"], "vocab": c["vocab"],
           "params": total_params, "attn_implementation": model.config._attn_implementation}
    row.update(extra)

    if mode in ("lora_train", "full_train"):
        if mode == "lora_train":
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora_settings))
            row["lora"] = {k: v for k, v in lora_settings.items()}
            row["lora_modules"] = sorted({re.split(r"\.(?:h|layers)\.\d+\.", n.rsplit(".lora_A", 1)[0], maxsplit=1)[-1]
                                          for n, _ in model.named_parameters() if ".lora_A" in n})
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, **ADAMW)
        row["trainable_params"] = sum(p.numel() for p in trainable)
        row["optimizer"] = {"name": "AdamW", "lr": ADAMW["lr"], "weight_decay": ADAMW["weight_decay"]}
        ids = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
        row.update(batch=c["batch"], context=c["context"])

        def run():
            optimizer.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            return loss.item()

        work = c["batch"] * c["context"]
    elif mode == "forward":
        model.eval()
        ids = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
        row.update(batch=c["batch"], context=c["context"])

        def run():
            with torch.no_grad():
                return model(input_ids=ids).logits.shape

        work = c["batch"] * c["context"]
    else:
        model.eval()
        prompt = torch.randint(0, c["vocab"] - 1, (1, GEN_PROMPT))
        row.update(batch=1, prompt=GEN_PROMPT, new_tokens=GEN_NEW, kv_cache=True)

        def run():
            with torch.no_grad():
                out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                     max_new_tokens=GEN_NEW, do_sample=False, use_cache=True,
                                     eos_token_id=None, pad_token_id=0)
            assert out.shape[1] == GEN_PROMPT + GEN_NEW, out.shape
            return out.shape

        work = GEN_NEW

    timing = time_repetitions(run, steps, warmup)
    row.update(
        tokens_per_s=work / timing["median_s"],
        **timing,
        # ru_maxrss is in KiB on Linux; the process peak includes the interpreter and torch.
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_after_model_mb=rss_model_mb,
        torch=torch.__version__,
    )
    print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description="PyTorch + PEFT CPU benchmark (GPT-2 shapes, Llama shapes, SmolLM2-135M)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--configs", default="7m,1m", help=f"comma list of {','.join(CONFIGS)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {','.join(MODES)}")
    parser.add_argument("--steps", type=int, default=5, help="timed repetitions (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions first")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (config, mode)")
    parser.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=JSON",
                        help="add a configuration (e.g. the shipped Llama-family model); repeatable")
    parser.add_argument("--smollm2-gguf", default=smollm2_gguf_path(), metavar="FILE",
                        help=f"the smollm2 configuration's model (default: the SafeTune model cache's {SMOLLM2_FILE})")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for text in args.shape:
        add_shape(text)

    if args.worker:
        worker(args.worker[0], args.worker[1], args.threads, args.steps, args.warmup, args.smollm2_gguf)
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    rows = []
    names = [n for n in args.configs.split(",") if n]
    for name in names:
        if name not in CONFIGS:
            sys.exit(f"unknown configuration '{name}' (known: {', '.join(CONFIGS)})")
        if CONFIGS[name].get("gguf") and not os.path.isfile(args.smollm2_gguf):
            sys.exit(missing_gguf_message(args.smollm2_gguf))
    for name in names:
        for mode in [m for m in args.modes.split(",") if m]:
            if mode not in MODES:
                sys.exit(f"unknown mode '{mode}' (known: {', '.join(MODES)})")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, mode,
                   "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            cmd += [f"--shape={text}" for text in args.shape]
            cmd += ["--smollm2-gguf", args.smollm2_gguf]
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                row = {"config": name, "mode": mode, "error": f"timed out after {args.timeout:.0f} s"}
            else:
                lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
                if done.returncode != 0 or not lines:
                    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                    row = {"config": name, "mode": mode, "error": f"exit {done.returncode}: {tail}"}
                else:
                    row = json.loads(lines[-1])
            rows.append(row)
            if not args.json:
                if "error" in row:
                    print(f"{name:>5} {mode:<11} ERROR {row['error']}", flush=True)
                else:
                    print(f"{name:>5} {mode:<11} {row['tokens_per_s']:10.1f} tok/s  median {row['median_s'] * 1000:9.1f} ms"
                          f"  peak RSS {row['peak_rss_mb']:7.1f} MB  load {row['loadavg_1m']}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
