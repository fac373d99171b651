"""Helpers shared by the reference scripts: the model cache's SmolLM2 path, the timing loop
of the benchmarks and the `--out/--only/--check` driver of the fixture writers."""

import argparse
import filecmp
import json
import os
import shutil
import sys
import tempfile

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def time_repetitions(run, steps, warmup):
    """`warmup` untimed calls of `run`, then `steps` timed ones: the timing fields of a
    benchmark row (median, min, max seconds, repetitions, 1-minute load before and after)."""
    import statistics
    import time

    load_before = os.getloadavg()[0]
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return dict(median_s=statistics.median(times), min_s=min(times), max_s=max(times), steps=steps, warmup=warmup,
                loadavg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)])


def smollm2_gguf_path():
    """SafeTune's model cache: $SAFETUNE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/safetune."""
    base = os.environ.get("SAFETUNE_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "safetune")
    return os.path.join(base, "models", SMOLLM2_FILE)


def fixture_main(description, default_out, parts):
    """Writes the fixture folders `parts` names (name → function of the output folder), or
    with --check regenerates them into a temporary folder and compares byte for byte."""
    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--only", default=",".join(parts))
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and compare byte for byte")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: a fixed summation order, reproducible bytes
    torch.use_deterministic_algorithms(True)
    names = [n for n in args.only.split(",") if n]
    out = tempfile.mkdtemp() if args.check else args.out
    for name in names:
        parts[name](out)
    if not args.check:
        return
    failed = []
    for name in names:
        mine, theirs = os.path.join(out, name), os.path.join(args.out, name)
        if sorted(os.listdir(mine)) != sorted(os.listdir(theirs)):
            failed.append(f"{name}/ (file list)")
        for f in sorted(os.listdir(mine)):
            other = os.path.join(theirs, f)
            if not os.path.exists(other) or not filecmp.cmp(os.path.join(mine, f), other, shallow=False):
                failed.append(f"{name}/{f}")
    shutil.rmtree(out)
    if failed:
        sys.exit("differs from committed fixtures: " + ", ".join(failed))
    print("committed fixtures match")


def to_json(value, indent=0, ensure_ascii=True):
    """json.dumps with one item per line, except lists of numbers (token ids), kept on one line."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        items = [f'{pad} {json.dumps(k, ensure_ascii=ensure_ascii)}: {to_json(v, indent + 1, ensure_ascii)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and not all(isinstance(v, (int, float)) for v in value):
        items = [pad + " " + to_json(v, indent + 1, ensure_ascii) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)
