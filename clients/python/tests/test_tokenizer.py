"""The Python actor's token bytes against the Swift tokenizers' goldens (Tests/TroupeTokenizerTests/Goldens,
made with Hugging Face tokenizers): joining a golden's tokens' bytes gives its decoded text, for a
byte-level tokenizer exactly, for Llama 2's SentencePiece-style one up to the first space its decoder strips.
    .build/venv-interop/bin/python -m unittest discover -s clients/python/tests"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from troupe_client.tokenizer import Tokenizer  # noqa: E402

GOLDENS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Tests", "TroupeTokenizerTests", "Goldens")


def load(folder):
    files = {}
    for name in ("tokenizer.json", "tokenizer_config.json"):
        path = os.path.join(GOLDENS, folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                files[name] = f.read()
    vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
    with open(os.path.join(GOLDENS, folder, "goldens.json"), encoding="utf-8") as f:
        cases = json.load(f)
    return Tokenizer(files, {"vocab_size": max(vocab.values()) + 64}), cases


class TokenBytesTest(unittest.TestCase):
    def joined(self, tokenizer, ids):
        return b"".join(tokenizer.bytes(i) for i in ids).decode("utf-8", errors="replace")

    def test_byte_level_tokens_join_to_the_decoded_text(self):
        for folder in ("gpt2-style", "qwen2-style"):
            tokenizer, cases = load(folder)
            for case in cases:
                self.assertEqual(self.joined(tokenizer, case["ids"]), case["decoded"], (folder, case["text"]))

    def test_sentencepiece_tokens_join_to_the_decoded_text_but_its_stripped_space(self):
        tokenizer, cases = load("llama2-style")
        with open(os.path.join(GOLDENS, "llama2-style", "tokenizer.json"), encoding="utf-8") as f:
            vocab = json.load(f)["model"]["vocab"]
        self.assertEqual(tokenizer.bytes(vocab["<0x0A>"]), b"\n")
        self.assertEqual(tokenizer.bytes(vocab["▁a"]), b" a")
        self.assertIn(2, tokenizer.stop_tokens)  # </s>, named by tokenizer_config.json
        # The second folder's vocabulary holds both spellings of "é" and of other texts one in Unicode.
        for folder in ("llama2-style", "llama2-equivalent-spellings"):
            tokenizer, cases = load(folder)
            for case in cases:
                joined = self.joined(tokenizer, case["ids"])
                stripped = joined[1:] if joined.startswith(" ") else joined
                self.assertEqual(stripped, case["decoded"], (folder, case["text"]))

    def test_a_normalized_added_token_is_spelled_through_the_normalizer(self):
        with open(os.path.join(GOLDENS, "llama2-style", "tokenizer.json"), encoding="utf-8") as f:
            spec = json.load(f)
        for added in spec["added_tokens"]:
            added["normalized"] = added["content"] == "<s>"
        tokenizer = Tokenizer({"tokenizer.json": json.dumps(spec)}, {"vocab_size": 1024})
        self.assertEqual(tokenizer.bytes(1), b" <s>")
        self.assertEqual(tokenizer.bytes(2), b"</s>")


if __name__ == "__main__":
    unittest.main()
