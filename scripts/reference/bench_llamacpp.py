#!/usr/bin/env python3
"""llama.cpp side of SafeTune's decode benchmark: batch-1 greedy decoding of a GGUF model.

Times the same work as `safetune bench --modes generate`: a 16-token prompt (uniform random
ids, seed 1), then 64 new tokens chosen greedily (argmax of the logits, no sampler chain),
with llama.cpp's KV cache; tokens/s = 64 / median seconds of prefill plus decoding. Each
repetition starts from an empty cache. One JSON row per file, in the keys bench_torch.py
prints (tokens_per_s, median_s, peak_rss_mb, ...).

The model files are SafeTune's own exports of the imported SmolLM2 (scripts/bench-compare
--llamacpp makes them: `safetune export gguf --type F32|F16`), so both sides decode the same
weights.

Requirements (never a dependency of SafeTune; pip builds llama.cpp from source, a few minutes):
    pip install llama-cpp-python==0.3.36 numpy
Usage:
    python3 scripts/reference/bench_llamacpp.py --gguf smollm2-f32.gguf --gguf smollm2-f16.gguf --threads 2 --json
"""

import argparse
import json
import os
import random
import resource

from common import time_repetitions

PROMPT = 16
NEW = 64


def bench(path, threads, steps, warmup):
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=path, n_ctx=PROMPT + NEW + 8, n_threads=threads, n_threads_batch=threads,
                          n_batch=PROMPT, verbose=False)
    vocab = llm.n_vocab()
    rng = random.Random(1)
    prompt = [rng.randrange(vocab - 1) for _ in range(PROMPT)]

    def last_logits():
        # The context's own buffer: without logits_all, Llama.eval keeps no copy.
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(vocab,))

    def run():
        llm.reset()
        llm.eval(prompt)
        out = []
        for _ in range(NEW):
            token = int(np.argmax(last_logits()))
            out.append(token)
            llm.eval([token])
        return out

    timing = time_repetitions(run, steps, warmup)
    return dict(file=os.path.basename(path), mode="generate", batch=1, prompt=PROMPT, new_tokens=NEW, threads=threads,
                tokens_per_s=NEW / timing["median_s"], **timing,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                llama_cpp_python=llama_cpp.__version__)


def main():
    parser = argparse.ArgumentParser(description="llama.cpp batch-1 greedy decoding, timed like safetune bench")
    parser.add_argument("--gguf", action="append", required=True, help="a GGUF file (repeat for several)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print a JSON array of rows")
    args = parser.parse_args()
    rows = [bench(path, args.threads, args.steps, args.warmup) for path in args.gguf]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['file']:<40} {r['tokens_per_s']:8.1f} tok/s  median {1000 * r['median_s']:.0f} ms  RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
