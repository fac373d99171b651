#!/usr/bin/env python3
"""Writes the GGUF fuzzing seeds under Fuzz/corpus/gguf/ with the `gguf` package.

- values.gguf: every metadata value type, arrays of strings, of ints and of arrays, and
  one small tensor of each type SafeTune reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
  Q5_1, Q4_K, Q6_K), with random (seeded) block bytes.
- tiny.gguf is a copy of Tests/CheckpointsTests/Fixtures/gguf/tiny/tiny.gguf (a whole
  llama model with tokenizer and chat template), made by make_gguf_fixtures.py.

Run from the repository root: python3 scripts/reference/make_gguf_fuzz_seeds.py
"""
import os
import shutil

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFValueType as V, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

OUT = "Fuzz/corpus/gguf"


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    w = GGUFWriter(os.path.join(OUT, "values.gguf"), "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_float32("t.f32", 1.5)
    w.add_uint64("t.u64", 2**63)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", -2.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_array("t.strings", ["a", "b c", ""])
    w.add_array("t.ints", [1, 2, 3])
    w.add_key_value("t.nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)
    for qtype in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q6_K]:
        block, size = GGML_QUANT_SIZES[qtype]
        blocks = 256 // block if block > 1 else 32
        if qtype in (T.F32, T.F16):
            values = rng.standard_normal(blocks).astype(np.float32 if qtype == T.F32 else np.float16)
            w.add_tensor(f"w.{qtype.name}", values)
            continue
        if qtype == T.BF16:
            raw = (rng.standard_normal(blocks).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        else:
            # Finite float16 scales: keep the top exponent bit of the first half clear.
            raw = rng.integers(0, 256, size=(blocks, size), dtype=np.uint8)
            raw[:, 1] &= 0x3B
            raw = raw.reshape(-1)
        w.add_tensor(f"w.{qtype.name}", raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    shutil.copyfile("Tests/CheckpointsTests/Fixtures/gguf/tiny/tiny.gguf", os.path.join(OUT, "tiny.gguf"))


if __name__ == "__main__":
    main()
