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


def _flatten(step, key):
    if step is None:
        return []
    if step.get("type") == "Sequence":
        return [leaf for member in step.get(key, []) for leaf in _flatten(member, key)]
    return [step]


def _sentencepiece_bytes(decoders):
    """A SentencePiece-style token's bytes (docs/PROTOCOL.md §5.1): a <0xHH> token is that byte when the
    decoder has ByteFallback; any other its spelling through the decoder's Replace steps and, for a
    Metaspace decoder, its replacement character as a space. Strip does not apply."""
    byte_fallback = any(d.get("type") == "ByteFallback" for d in decoders)

    def token_bytes(token):
        if byte_fallback and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            try:
                return bytes([int(token[3:5], 16)])
            except ValueError:
                pass
        for d in decoders:
            if d.get("type") == "Replace":
                token = token.replace(d["pattern"]["String"], d["content"])
            elif d.get("type") == "Metaspace":
                token = token.replace(d["replacement"], " ")
        return token.encode("utf-8")
    return token_bytes


def _normalizer(steps):
    """tokenizer.json's normalizer over a string: NFC, Prepend, Replace (String pattern), in order."""
    import unicodedata

    def normalize(text):
        for step in steps:
            kind = step.get("type")
            if kind == "NFC":
                text = unicodedata.normalize("NFC", text)
            elif kind == "Prepend" and text:
                text = step["prepend"] + text
            elif kind == "Replace":
                text = text.replace(step["pattern"]["String"], step["content"])
        return text
    return normalize


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
            byte_level = any(p.get("type") == "ByteLevel" for p in _flatten(spec.get("pre_tokenizer"), "pretokenizers"))
            token_bytes = _token_bytes if byte_level else _sentencepiece_bytes(_flatten(spec.get("decoder"), "decoders"))
            self.bytes_of = [None] * self.vocab_size
            names = {}
            for token, token_id in spec["model"]["vocab"].items():
                if 0 <= token_id < self.vocab_size:
                    self.bytes_of[token_id] = token_bytes(token)
                    names[token] = token_id
            # A normalized added token is spelled in its normalized form, as tokenizers decodes it.
            normalize = _normalizer(_flatten(spec.get("normalizer"), "normalizers"))
            for added in spec.get("added_tokens", []):
                if 0 <= added["id"] < self.vocab_size:
                    spelling = normalize(added["content"]) if added.get("normalized", not added.get("special", False)) else added["content"]
                    self.bytes_of[added["id"]] = token_bytes(spelling)
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
