"""The bytes of each token id, as the learner's tokenizer gives them (the text rewards are scored on),
and the model's stop tokens (docs/PROTOCOL.md §5.3). Only decoding is needed: prompts arrive as ids."""
import json


def _byte_level_alphabet():
    # GPT-2's byte-to-unicode table, which Hugging Face byte-level vocabularies are spelled in.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, codes)}


_BYTE_OF = _byte_level_alphabet()


def _token_bytes(token):
    out = bytearray()
    for ch in token:
        b = _BYTE_OF.get(ch)
        if b is None:  # not spelled in the alphabet: the token's own UTF-8, as the learner does
            return token.encode("utf-8")
        out.append(b)
    return bytes(out)


class Tokenizer:
    def __init__(self, model_files, model_config):
        self.vocab_size = int(model_config["vocab_size"])
        text = model_files.get("tokenizer.json")
        eos_ids = model_config.get("eos_token_id")
        eos_ids = [] if eos_ids is None else (eos_ids if isinstance(eos_ids, list) else [eos_ids])
        if text is None:
            # The built-in byte tokenizer: ids 0-255 are bytes, 256-258 <|bos|>, <|eos|>, <|pad|>.
            self.bytes_of = [bytes([i]) for i in range(256)] + [b"<|bos|>", b"<|eos|>", b"<|pad|>"]
            tokenizer_eos = 257
        else:
            spec = json.loads(text)
            self.bytes_of = [None] * self.vocab_size
            names = {}
            for token, token_id in spec["model"]["vocab"].items():
                if 0 <= token_id < self.vocab_size:
                    self.bytes_of[token_id] = _token_bytes(token)
                    names[token] = token_id
            for added in spec.get("added_tokens", []):
                if 0 <= added["id"] < self.vocab_size:
                    self.bytes_of[added["id"]] = _token_bytes(added["content"])
                    names[added["content"]] = added["id"]
            tokenizer_eos = None
            config_text = model_files.get("tokenizer_config.json")
            if config_text is not None:
                eos = json.loads(config_text).get("eos_token")
                if isinstance(eos, dict):
                    eos = eos.get("content")
                tokenizer_eos = names.get(eos) if eos is not None else None
            elif eos_ids:
                tokenizer_eos = eos_ids[0]
        self.stop_tokens = [int(i) for i in eos_ids]
        if tokenizer_eos is not None and tokenizer_eos not in self.stop_tokens:
            self.stop_tokens.append(tokenizer_eos)

    def bytes(self, token_id):
        if 0 <= token_id < len(self.bytes_of) and self.bytes_of[token_id] is not None:
            return self.bytes_of[token_id]
        return b""

    def completion_text(self, tokens, stop_sequences):
        """The text answers are extracted from: the tokens' bytes without stop tokens, as UTF-8 with
        U+FFFD for invalid bytes, through the end of the first stop sequence (GroupScorer.text)."""
        stops = set(self.stop_tokens)
        text = b"".join(self.bytes(t) for t in tokens if t not in stops).decode("utf-8", errors="replace")
        ends = [text.find(s) + len(s) for s in stop_sequences if s and text.find(s) >= 0]
        return text[: min(ends)] if ends else text
