#!/usr/bin/env python3
"""Train small byte-level BPE tokenizers with Hugging Face `tokenizers` and write golden encodings.

The Swift tests in Tests/TroupeTokenizerTests compare their encodings against these goldens, id for
id. Everything is deterministic: the training text is built below from fixed strings and a seeded
RNG, and `tokenizers` training is deterministic for a given text and version.

    pip install tokenizers          # written with tokenizers 0.23.3
    python3 scripts/tokenizer/make_goldens.py

Writes into Tests/TroupeTokenizerTests/Goldens/:
  gpt2-style/    ByteLevel(use_regex) pre-tokenizer, vocab 1000, special and non-special added tokens
                 (including lstrip/rstrip/single_word ones); goldens.json, decode_goldens.json
  llama3-style/  Split(Llama 3 regex) + ByteLevel, ignore_merges, tokenizer_config.json
  qwen2-style/   NFC normalizer, Split(Qwen2 regex) + ByteLevel, tokenizer_config.json
  llama2-style/  SentencePiece-style BPE as Llama 2, Mistral and TinyLlama ship it: normalizer
                 Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte_fallback with <0x00>…<0xFF>
                 in the vocabulary, <unk> with fuse_unk, decoder Replace + ByteFallback + Fuse + Strip;
                 tokenizer_config.json, goldens.json, decode_goldens.json
  llama2-equivalent-spellings/   llama2-style with both spellings of texts that are one in Unicode
                 ("é" and "e" + U+0301, U+0958 and its decomposition, …) as separate vocabulary entries
  variants.json  goldens for a base tokenizer with patched top-level fields ("patch") or model fields
                 ("model_patch"): add_prefix_space, Digits, Llama 3 style without ignore_merges; Llama 2
                 style with a Metaspace pre-tokenizer (prepend "first", and "always" with split and the
                 Metaspace decoder), without byte_fallback (unknown characters fuse into <unk>), and
                 with <s> a normalized added token
  fixture-bpe-gpt2-1024/, fixture-llama-tiny/   reference tokenizers kept as received (+ goldens
                 for llama-tiny, computed here)
Each goldens.json is a list of {"text", "ids", "tokens", "decoded"}; "tokens" are id_to_token(id),
"decoded" is decode(ids, skip_special_tokens=False).
"""
import json
import os
import random
import shutil
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TroupeTokenizerTests", "Goldens")
FIXTURES = os.environ.get("TROUPE_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------
# Training text: prose, code, arithmetic, several scripts, emoji, whitespace runs, punctuation.
# ---------------------------------------------------------------------------------------------
PROSE = [
    "The learner trains on batches of rollouts that the actors sample from the current policy.",
    "Each actor asks for a lease, samples a group of completions, and sends them back with their log-probs.",
    "If the weights are stale, the rollout is dropped; otherwise it is added to the pending buffer.",
    "We don't know yet whether it's faster, but they're sure it'll work, and we've checked twice.",
    "She'd said \"never again\" -- then she did it anyway (twice!), didn't she?",
    "Reinforcement learning with verifiable rewards: the answer is checked, not guessed.",
    "A tokenizer maps text to integers; a good one keeps common words whole and splits rare ones.",
    "What is the probability that two of the three samples agree?  Roughly one in four.",
    "   Indented lines, trailing spaces   \nand blank lines\n\n\nare part of real text too.",
    "Tabs\tseparate\tcolumns\tin\tTSV files;\r\nWindows files end lines with CR LF.\r\n",
    "I'M SHOUTING BECAUSE IT'S LOUD; YOU'RE NOT, AND WE'LL SEE WHO'D WIN.",
    "e-mail: someone@example.com, URL: https://example.org/path?query=1&x=y#frag",
]
UNICODE = [
    "Le café est déjà prêt : une crème brûlée, s'il vous plaît, à côté de la fenêtre.",
    "Über die Brücke gehen fünf Mädchen; das Wetter ist schön, aber kühl. Straße, Maß, Fuß.",
    "El niño comió piña y jalapeños en el año pasado; ¿qué más? ¡Olé!",
    "Ελληνικά: η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Русский текст: съешь же ещё этих мягких французских булок, да выпей чаю.",
    "日本語の文章とカタカナのテキスト、そして漢字。東京は大きい都市です。",
    "中文文本：我们正在训练一个小型的分词器。数字一二三四五。",
    "한국어 문장도 조금 넣습니다. 안녕하세요!",
    "مرحبا بالعالم، هذا نص عربي قصير.",
    "हिन्दी में कुछ शब्द: नमस्ते दुनिया।",
    "Emoji: 🙂 😀 🚀 🎉 👩‍💻 ❤️ 🇫🇷 — and symbols ± × ÷ ≤ ≥ ≠ ∞ ∑ √ π ° € £ ¥ © ®.",
    "Typography: “curly quotes”, ‘single’, en–dash, em—dash, ellipsis…, non\u00a0breaking\u00a0space.",
]
CODE = [
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += x[i] * y[i];\n}\n",
    "struct Point: Equatable {\n    var x: Double\n    var y: Double\n}\nlet p = Point(x: 1.5, y: -2.25)\n",
    '{"name": "troupe", "version": "0.1.0", "tags": ["rl", "bpe"], "ok": true, "n": 42}\n',
    "if x != None and len(xs) >= 3:\n    print(f\"{x!r}: {xs[0]:.3f}\")  # debug\n",
    "SELECT id, name FROM users WHERE age > 21 ORDER BY name;\n",
    "$ swift build -c release && ./.build/release/troupe tokenize --model ./m \"hi\"\n",
    "x = [1, 2, 3]; y = {'a': 1, 'b': 2}; z = (x[0] ** 2) // 3 % 7\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1 << 10); return 0; }\n",
]


def training_text() -> str:
    rng = random.Random(20261127)
    parts = []
    for round_ in range(40):
        parts += PROSE + UNICODE + CODE
        for _ in range(30):
            a, b = rng.randint(0, 99999), rng.randint(0, 9999)
            op = rng.choice(["+", "-", "*"])
            value = {"+": a + b, "-": a - b, "*": a * b}[op]
            parts.append(f"Question: what is {a} {op} {b}? Answer: {value}.")
            parts.append(f"{rng.random():.6f} {rng.uniform(-1e3, 1e3):.2f} {rng.randint(0, 10**12):,} 0x{rng.getrandbits(32):08x}")
        parts.append(" " * rng.randint(2, 12) + "indented" + "\t" * rng.randint(1, 3) + "tabbed" + "\n" * rng.randint(1, 4))
        parts.append("!?" * rng.randint(1, 5) + " ..." + "=" * rng.randint(3, 20))
    rng.shuffle(parts)
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Awkward strings to encode.
# ---------------------------------------------------------------------------------------------
COMMON_CASES = [
    "", " ", "  ", "\t", "\n", "\r\n", "   \n", "Hello world", "hello  world",
    "  leading and   multiple   spaces", "trailing spaces   ", "tabs\tand\nnewlines\n\n",
    "line1\r\nline2\r\n\r\nline3", "\n\n\n   \n\tx", "  \n  x", "a \n b",
    "What is 1234567 + 89?", "3.14159 and 2e-5 and 1,000,000 and 007", "x=3.14159;y=-2e-5",
    "don't we'll they're I'M you've she'd it's", "DON'T WE'LL THEY'RE I'D YOU'VE",
    "'s 't 're 've 'm 'll 'd 'x", "rock'n'roll 'quoted' ''double''", "'ſ 'Sa 'rE",
    "naïve café — “quotes”", "Le café est déjà prêt", "Straße Brücke fünf",
    "日本語のテキスト", "中文文本：分词器。", "Ελληνικά и русский текст",
    "مرحبا بالعالم", "नमस्ते दुनिया", "Tiếng Việt có dấu",
    "emoji 🙂🚀 mixed", "👩‍💻 ❤️ 🇫🇷 family 👨‍👩‍👧", "±×÷≤≥≠∞∑√π°€£¥",
    "e\u0301 versus \u00e9 (combining acute)", "\ufb01 ligature \u216b \u00b2 \u00bd \u2460",
    "\u00a0nbsp\u00a0and\u200bzero-width", "a\u2028b\u3000c\u0085d", "\x1c\x1d\x1e\x1f controls \x00\x01\x7f",
    "def f(a, b):\n    return a**b  # comment", "for (int i = 0; i < n; ++i) {\n\tsum += x[i];\n}",
    '{"key": [1, 2.5, -3e4], "ok": true}', "((nested)) [brackets] {braces} <angles>",
    "!!!???...,,,;;;", "The answer is \\boxed{42}.", "https://example.org/a?b=1&c=2#d",
    "a" * 50, "ab" * 70, "abcdefghij" * 30, "9" * 40, " " * 20 + "x", "\t" * 5, "\n" * 7,
    "word words _word word_ 1word éword (word)",
]


def case(tok: Tokenizer, text: str) -> dict:
    ids = tok.encode(text, add_special_tokens=False).ids
    return {"text": text, "ids": ids, "tokens": [tok.id_to_token(i) for i in ids],
            "decoded": tok.decode(ids, skip_special_tokens=False)}


def write_json(path: str, value) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def train(pre_tokenizer, specials, normalizer=None, ignore_merges=False) -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([training_text()], trainer=trainer)
    return tok


def gpt2_style() -> Tokenizer:
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), ["<|endoftext|>", "<|pad|>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([
        AddedToken("<think>"), AddedToken("</think>"),       # non-special, normalized
        AddedToken(" [X] ", normalized=False),                # spaces inside: decoded verbatim
        AddedToken("word", single_word=True),
        AddedToken("RS", rstrip=True, normalized=False),
        AddedToken("Ġhi"),                                    # byte-level spelling: decodes to " hi"
    ])
    return tok


GPT2_EXTRA_CASES = [
    "<|endoftext|>", "<|endoftext|>between<|endoftext|>", "a<|pad|>b<|endoftext|>", "<|endoftext",
    "<think>reason</think>answer", "x  <mask>  y", "<mask><mask>", "a [X] b", "a[X]b",
    "word words _word word_ 1word éword (word) word\u0301", "xRS   y RS\n\nz", "say Ġhi and hi",
    "xRS [X] y",  # the rstrip of RS swallows the space that starts " [X] ": they overlap
]


def llama3_style() -> Tokenizer:
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok = train(pre, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], ignore_merges=True)
    # A trained vocabulary's merges rebuild each of its words, so ignore_merges would change nothing.
    # Real Llama 3 vocabularies hold words the merges do not reach; add two such entries.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for word in ["Ġtroupe", "Ġtroupes"]:
        vocab[word] = len(vocab)
    return Tokenizer.from_str(json.dumps(spec))


def qwen2_style() -> Tokenizer:
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    return train(pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], normalizer=normalizers.NFC())


def llama2_style() -> Tokenizer:
    """Trained with a splitting Metaspace pre-tokenizer (SentencePiece learns its merges word by word),
    then saved as Llama 2's tokenizer.json writes it: the whole normalized text is one BPE word."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                                  show_progress=False)
    tok.train_from_iterator([training_text()], trainer=trainer)
    spec = json.loads(tok.to_str())
    # As in Llama 2: the byte tokens are plain vocabulary entries, not added tokens.
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in byte_tokens]
    spec["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                             {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    spec["pre_tokenizer"] = None
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return Tokenizer.from_str(json.dumps(spec))


LLAMA2_CASES = ["<s>Hello</s>", "a<s> b</s>  c", "<s> <s>x", "<0x41> is not a byte token in text", "▁already▁spelled",
                " ▁ mixed", "rare: ⽇ ꙮ 𓀀 𝔘𝔫𝔦", "x\u0000y", "Hi <s>", "a<s>", "x </s>  y</s>"]


SPECIAL_CASES = {
    "llama3-style": ["<|begin_of_text|>Hi<|eot_id|>", "<|end_of_text|><|end_of_text|>x",
                     "A1234567890 12 123 1234", "x\n\n\ny", "ABC'S 'LL 'Ve", "\t\tx", "  \r\n  x",
                     "a troupe of troupes, troupe"],
    "qwen2-style": ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "12345 and ５６", "Ä vs A\u0308"],
}


# Pairs of spellings that are one text in Unicode (canonically equivalent) but distinct entries to
# tokenizers: precomposed and combining forms, a composition-excluded letter (U+0958), singleton
# decompositions (a CJK compatibility ideograph, the Angstrom sign).
EQUIVALENT_SINGLES = ["\u00e9", "\u0301", "\u0915", "\u093c", "\u0958", "\uf900", "\u8c48", "\u212b", "\u00c5"]
EQUIVALENT_MERGES = [("e", "\u0301"), ("\u0915", "\u093c")]
EQUIVALENT_CASES = ["caf\u00e9 cafe\u0301", "e\u0301e\u0301\u00e9", "\u0958 \u0915\u093c \u0915", "\uf900\u8c48",
                    "\u212b \u00c5 A\u030a", "\u0301 lone accent"]


def equivalent_spellings(spec: dict) -> None:
    """llama2-style with both spellings of several Unicode texts in its vocabulary."""
    spec = json.loads(json.dumps(spec))
    vocab = spec["model"]["vocab"]
    for token in EQUIVALENT_SINGLES + [a + b for a, b in EQUIVALENT_MERGES]:
        vocab.setdefault(token, len(vocab))
    assert "e" in vocab
    spec["model"]["merges"] += [[a, b] for a, b in EQUIVALENT_MERGES]
    tok = Tokenizer.from_str(json.dumps(spec))
    folder = "llama2-equivalent-spellings"
    save_tokenizer(tok, folder)
    write_json(os.path.join(OUT, folder, "goldens.json"), [case(tok, t) for t in EQUIVALENT_CASES + ["Hello world"]])


def save_tokenizer(tok: Tokenizer, folder: str) -> str:
    path = os.path.join(OUT, folder, "tokenizer.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tok.save(path, pretty=True)
    return path


def main() -> None:
    # gpt2-style, with its decode-only goldens (invalid UTF-8, lone bytes) and the variants.
    tok = gpt2_style()
    path = save_tokenizer(tok, "gpt2-style")
    write_json(os.path.join(OUT, "gpt2-style", "goldens.json"), [case(tok, t) for t in COMMON_CASES + GPT2_EXTRA_CASES])
    alphabet = bytes_to_unicode()
    def ids_of(*bs):
        return [tok.token_to_id(alphabet[b]) for b in bs]
    decode_cases = [ids_of(0xC3), ids_of(0xE6, 0x97), ids_of(0x41, 0xFF, 0x42), ids_of(0xF0, 0x9F, 0x99),
                    ids_of(0x80, 0x80, 0x61), ids_of(0xED, 0xA0, 0x80), ids_of(0xC3) + [tok.token_to_id("<|endoftext|>")] + ids_of(0xA9),
                    [tok.token_to_id(" [X] "), tok.token_to_id("<mask>"), tok.token_to_id("Ġhi")]]
    write_json(os.path.join(OUT, "gpt2-style", "decode_goldens.json"),
               [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)} for ids in decode_cases])

    variants = []
    for name, pre in [
        ("add_prefix_space", pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)),
        ("digits_individual", pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])),
        ("digits_contiguous_then_split", pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.Split(Regex(GPT2_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)])),
    ]:
        variant = Tokenizer.from_file(path)
        variant.pre_tokenizer = pre
        patched = json.loads(variant.to_str())
        variants.append({"name": name, "base": "gpt2-style", "patch": {"pre_tokenizer": patched["pre_tokenizer"]},
                         "cases": [case(variant, t) for t in COMMON_CASES + GPT2_EXTRA_CASES]})

    for folder, make, config in [
        ("llama3-style", llama3_style, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
        ("qwen2-style", qwen2_style, {"bos_token": None, "eos_token": {"content": "<|im_end|>", "special": True},
                                      "pad_token": "<|endoftext|>"}),
    ]:
        tok = make()
        path = save_tokenizer(tok, folder)
        if folder == "llama3-style":
            spec = json.loads(tok.to_str())
            spec["model"]["ignore_merges"] = False
            variant = Tokenizer.from_str(json.dumps(spec))
            variants.append({"name": "no_ignore_merges", "base": folder, "model_patch": {"ignore_merges": False},
                             "cases": [case(variant, t) for t in COMMON_CASES + SPECIAL_CASES[folder]]})
        write_json(os.path.join(OUT, folder, "tokenizer_config.json"), config)
        write_json(os.path.join(OUT, folder, "goldens.json"),
                   [case(tok, t) for t in COMMON_CASES + SPECIAL_CASES[folder]])

    tok = llama2_style()
    path = save_tokenizer(tok, "llama2-style")
    write_json(os.path.join(OUT, "llama2-style", "tokenizer_config.json"), {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    write_json(os.path.join(OUT, "llama2-style", "goldens.json"), [case(tok, t) for t in COMMON_CASES + LLAMA2_CASES])
    byte = lambda b: tok.token_to_id(f"<0x{b:02X}>")
    llama2_decodes = [[byte(0xE2), byte(0x82)], [byte(0xE2), byte(0x82), byte(0xAC)], [byte(0x41), byte(0xFF), byte(0x42)],
                      [tok.token_to_id("▁a"), byte(0xC3), tok.token_to_id("<s>"), byte(0xA9)],
                      [byte(0x20), byte(0x20), tok.token_to_id("▁a")], [tok.token_to_id("▁"), tok.token_to_id("▁")],
                      [tok.token_to_id("</s>"), tok.token_to_id("▁a")], []]
    write_json(os.path.join(OUT, "llama2-style", "decode_goldens.json"),
               [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)} for ids in llama2_decodes])
    spec = json.loads(tok.to_str())
    equivalent_spellings(spec)
    for name, patch, model_patch in [
        ("llama2_metaspace_first", {"normalizer": None, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁",
                                                                          "prepend_scheme": "first", "split": False}}, {}),
        ("llama2_metaspace_always_split", {"normalizer": None,
                                           "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
                                           "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}}, {}),
        ("llama2_no_byte_fallback", {}, {"byte_fallback": False}),
        # A normalized added token is matched in its normalized spelling ("▁<s>").
        ("llama2_normalized_added_token", {"added_tokens": [dict(t, normalized=t["content"] == "<s>") for t in spec["added_tokens"]]}, {}),
    ]:
        patched = dict(spec, **patch)
        patched["model"] = dict(spec["model"], **model_patch)
        variant = Tokenizer.from_str(json.dumps(patched))
        variants.append({"name": name, "base": "llama2-style", "patch": patch, "model_patch": model_patch,
                         "cases": [case(variant, t) for t in COMMON_CASES + LLAMA2_CASES]})

    write_json(os.path.join(OUT, "variants.json"), variants)

    # The shared fixtures: copied, and goldens for llama-tiny (bpe-gpt2-1024 brings its own).
    for folder, files in [("bpe-gpt2-1024", ["tokenizer.json", "goldens.json"]),
                          ("llama-tiny", ["tokenizer.json", "tokenizer_config.json"])]:
        os.makedirs(os.path.join(OUT, "fixture-" + folder), exist_ok=True)
        for name in files:
            target = os.path.join(OUT, "fixture-" + folder, name)
            shutil.copyfile(os.path.join(FIXTURES, folder, name), target)
            os.chmod(target, 0o644)
    tiny = Tokenizer.from_file(os.path.join(FIXTURES, "llama-tiny", "tokenizer.json"))
    write_json(os.path.join(OUT, "fixture-llama-tiny", "goldens.json"),
               [case(tiny, t) for t in COMMON_CASES + ["Ā", "xĀy", "ĀĀ"]])
    print("wrote goldens into", OUT, file=sys.stderr)


def bytes_to_unicode() -> dict:
    """GPT-2's byte → character table (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


if __name__ == "__main__":
    main()
