#!/usr/bin/env python3
"""Builds the tokenizer test fixtures in Tests/TokenizersTests/Fixtures.

Trains small tokenizers of each supported kind with the Hugging Face `tokenizers`
library on an original corpus (written below), and records the ids and decodes that
library produces for a varied set of texts. SafeTune's tests must reproduce them.

Requirements (reference stack, not needed by the Swift build or CI):
    pip install torch==2.13.0+cpu transformers peft tokenizers safetensors h5py
Run with HF_HUB_OFFLINE=1 (nothing is downloaded).

Usage:
    python3 scripts/reference/make_tokenizer_fixtures.py
        writes corpus.txt, <kind>.json tokenizers and expected.json
    python3 scripts/reference/make_tokenizer_fixtures.py --trained PATH
        also records the ids for PATH, a tokenizer.json written by
        `safetune tokenizer train`, into trained-expected.json
"""
import argparse
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "TokenizersTests", "Fixtures")

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# An original corpus (written for this project, no third-party text).
PARAGRAPHS = [
    "The tokenizer reads the text and splits it into pieces. Each piece is looked up in the vocabulary, "
    "and pairs of symbols are merged in the order they were learned. Merges that were learned early are "
    "applied first, so common words become single tokens while rare words stay split into smaller parts.",
    "On Monday the weather was cold and grey; on Tuesday it rained for hours. By Wednesday the sun came "
    "back, and the children played outside until the evening. The forecast for the weekend says it will "
    "be warm, with a light wind from the west and temperatures near 21 degrees.",
    "To bake the bread, mix 500 grams of flour with 320 grams of water, 10 grams of salt and 4 grams of "
    "yeast. Knead the dough for ten minutes, let it rest for two hours, shape it, and bake it at 230 "
    "degrees for about 35 minutes. Let it cool before you cut it!",
    "def tokenize(text):\n    pieces = text.split()\n    return [vocab.get(p, unk) for p in pieces]\n\n"
    "for i in range(10):\n\tprint(i * i, end=' ')\n",
    "She said: \"I can't come today, but I'll be there tomorrow.\" He replied that he'd wait, and "
    "they're planning to meet at 9:30. We've got time, it's fine, you're right.",
    "Le café était fermé, alors nous avons marché jusqu'à la boulangerie. Die Straße war ruhig, "
    "und über den Dächern flogen Vögel. El niño comió una manzana y después durmió la siesta.",
    "Привет, как дела? Всё хорошо, спасибо. Καλημέρα, τι κάνεις; 今日は天気がいいですね。我们明天去公园散步。",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 3.14159 2.71828 1e-5 -42 +7 50% $19.99 #1 @home",
    "Symbols and punctuation: (a, b) [c; d] {e: f} <g> a+b=c x*y/z ~tilde ^caret |pipe| back\\slash",
    "Emoji are bytes too: 😀 🎉 👍 ❤️ 🚀 and accents like é è ê ë à â ô ù û ç.",
    "Hello world! Hello again, world. The program prints hello world and then the time. "
    "When the world says hello, answer with a greeting of your own: hello, hi, good morning.",
    "A language model predicts the next token. Training it on text teaches it which tokens tend to "
    "follow which; fine-tuning it on a smaller set of examples changes that behaviour, sometimes in "
    "ways nobody intended, which is why the safety of a model must be tested again after training.",
]

SPECIAL_GPT2 = ["<|endoftext|>"]
SPECIAL_LLAMA3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
SPECIAL_QWEN2 = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SPECIAL_LLAMA2 = ["<unk>", "<s>", "</s>"]

TEXTS = [
    "",
    "Hello world",
    " Hello  world ",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé façade",
    "Ünïcödé: Ωμέγα, Привет мир",
    "日本語のテキストと中文字符",
    "emoji 😀🎉👍🏽 and flags 🇫🇷",
    "tabs\tand\nnewlines\r\n\n  indented",
    "   leading and trailing   ",
    "digits 1234567890 and 3.14159, 42nd",
    "code: def f(x):\n    return x**2 + 1  # comment",
    "can't won't I'm you're we've they'll he'd IT'S I'LL",
    "<|endoftext|>Special tokens<|endoftext|> in text",
    "<s> begin and end </s>",
    "<|im_start|>user\nHi there<|im_end|>\n",
    "<|begin_of_text|>Hi<|eot_id|>",
    "a <mask> token and   <mask>here",
    "Hello world again, hello World",
    "e\u0301 vs \u00e9 (composed)",
    "\ufb01 ligature and \u2460 circled",
    "    \n\n\t  ",
    "x" * 300,
    "\u0149 \u01c5 \u00df \u017f",
    "URL https://example.com/path?q=1&r=2",
    "mixed-case CamelCaseIdentifiers and snake_case_names",
    "zero\u200bwidth and non\u00a0breaking spaces",
    "\u2581already has the meta symbol \u2581\u2581 twice",
    "\U0001F600" * 5 + "\x00\x01\x7f",
]


def corpus_lines():
    lines = []
    for p in PARAGRAPHS:
        lines.extend(line for line in p.split("\n"))
    return lines


def train(tok, trainer):
    # Repeat the corpus so that merge counts separate well.
    tok.train_from_iterator(corpus_lines() * 3, trainer=trainer)
    return tok


def make_gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    train(tok, trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIAL_GPT2, show_progress=False,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
    return tok


def make_llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    train(tok, trainers.BpeTrainer(vocab_size=520, special_tokens=SPECIAL_LLAMA3, show_progress=False,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def make_qwen2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    train(tok, trainers.BpeTrainer(vocab_size=480, special_tokens=SPECIAL_QWEN2, show_progress=False,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    # A plain (non-special) added token matched after normalization.
    tok.add_tokens([AddedToken("Hello world", normalized=True, special=False)])
    return tok


def with_byte_tokens(tok):
    """Rebuilds the model vocabulary as Llama-2 lays it out: <unk> <s> </s>, then the 256
    <0xNN> byte tokens, then the learned tokens in order."""
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    order = sorted(vocab.items(), key=lambda kv: kv[1])
    new = {}
    for name in SPECIAL_LLAMA2:
        new[name] = len(new)
    for b in range(256):
        new["<0x%02X>" % b] = len(new)
    for token, _ in order:
        if token not in new:
            new[token] = len(new)
    data["model"]["vocab"] = new
    for t in data["added_tokens"]:
        t["id"] = new[t["content"]]
    bos = new["<s>"]
    data["post_processor"] = json.loads(processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]).__getstate__())
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def make_llama2():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([
        decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    # A small alphabet so that rarer characters go through byte fallback.
    train(tok, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_LLAMA2, show_progress=False,
                                   limit_alphabet=70))
    return with_byte_tokens(tok)


def make_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    train(tok, trainers.BpeTrainer(vocab_size=380, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                                   limit_alphabet=60))
    return tok


def make_bert_bpe():
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    train(tok, trainers.BpeTrainer(vocab_size=360, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False,
                                   continuing_subword_prefix="##", limit_alphabet=80))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def expectations(tok):
    entry = {"vocab_size": tok.get_vocab_size(with_added_tokens=True), "cases": []}
    for text in TEXTS:
        with_special = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        entry["cases"].append({
            "ids": with_special,
            "ids_plain": plain,
            "decoded": tok.decode(plain, skip_special_tokens=False),
            "decoded_skip": tok.decode(with_special, skip_special_tokens=True),
        })
    return entry


def write_json(name, obj):
    with open(os.path.join(FIXTURES, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def legacy_merges(tok):
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    return json.dumps(data, ensure_ascii=False, indent=2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trained", help="tokenizer.json written by `safetune tokenizer train`")
    args = parser.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)

    with open(os.path.join(FIXTURES, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(corpus_lines()) + "\n")

    kinds = {
        "gpt2": make_gpt2(),
        "llama3": make_llama3(),
        "qwen2": make_qwen2(),
        "llama2": make_llama2(),
        "metaspace": make_metaspace(),
        "bert_bpe": make_bert_bpe(),
    }
    expected = {"texts": TEXTS, "tokenizers": {}}
    for name, tok in kinds.items():
        tok.save(os.path.join(FIXTURES, name + ".json"), pretty=True)
        expected["tokenizers"][name] = expectations(tok)

    # The GPT-2 tokenizer again with merges in the older "a b" string form.
    legacy = legacy_merges(kinds["gpt2"])
    with open(os.path.join(FIXTURES, "gpt2_legacy.json"), "w", encoding="utf-8") as f:
        f.write(legacy)
    reloaded = Tokenizer.from_str(legacy)
    expected["tokenizers"]["gpt2_legacy"] = expectations(reloaded)
    assert expected["tokenizers"]["gpt2_legacy"] == expected["tokenizers"]["gpt2"]
    write_json("expected.json", expected)

    if args.trained:
        trained = Tokenizer.from_file(args.trained)
        write_json("trained-expected.json", {"texts": TEXTS, "tokenizers": {"trained": expectations(trained)}})


if __name__ == "__main__":
    main()
