"""The sampler interface an inference engine implements, and the reference one: the learner's own
Llama-family model in numpy.

A sampler turns a prompt's token ids into completions and reports, for every sampled token, its
behaviour log-prob: the natural log of its probability under the FULL tempered distribution
(softmax(logits / temperature), before any top-k/top-p truncation; docs/PROTOCOL.md §5.3), from the
weights version the actor names. The learner re-computes these with its own model when it trains
(the importance ratio compares the two, and mismatch_kl logs how far apart they are), so a sampler
must run the same weights: an engine that serves other weights, or quantizes them, trains the learner
off-policy."""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .model import LlamaModel, ModelConfig

STOP, LENGTH = 1, 2  # FinishReason values


@dataclass
class SamplingRequest:
    prompt_tokens: List[int]
    group_size: int
    temperature: float
    top_k: int            # 0: off
    top_p: float          # 1: off
    max_tokens: int       # min(max_tokens, context - prompt) is the LENGTH limit
    stop_sequences: List[str]
    seed: int


@dataclass
class Completion:
    tokens: List[int]
    logprobs: List[float]
    finish_reason: int
    entropies: Optional[List[float]] = None
    external_reward: Optional[float] = field(default=None)  # only for reward.kind = external


class Sampler:
    """What the actor needs from an inference engine."""

    def load_weights(self, version, tensors):
        """Use these weights (name -> float32 array, Hugging Face names) from now on."""
        raise NotImplementedError

    def sample(self, request: SamplingRequest, want_entropies: bool, rng: np.random.Generator) -> List[Completion]:
        """`request.group_size` completions of `request.prompt_tokens`."""
        raise NotImplementedError


class NumpySampler(Sampler):
    def __init__(self, model_config, tokenizer):
        self.config = ModelConfig(model_config)
        self.tokenizer = tokenizer
        self.model = None

    def load_weights(self, version, tensors):
        self.model = LlamaModel(self.config, tensors)

    def sample(self, request, want_entropies, rng):
        return [self._one(request, want_entropies, rng) for _ in range(request.group_size)]

    def _one(self, request, want_entropies, rng):
        limit = min(request.max_tokens, self.config.max_positions - len(request.prompt_tokens))
        if limit <= 0:
            raise ValueError(f"the prompt ({len(request.prompt_tokens)} tokens) leaves no room in the model's context")
        stops = set(self.tokenizer.stop_tokens)
        stop_bytes = [s.encode("utf-8") for s in request.stop_sequences if s]
        cache = self.model.new_cache()
        logits = self.model.forward(request.prompt_tokens, 0, cache)
        tokens, logprobs, entropies, text = [], [], [], b""
        finish = LENGTH
        while len(tokens) < limit:
            scaled = logits.astype(np.float64) / request.temperature
            scaled -= scaled.max()
            log_z = np.log(np.exp(scaled).sum())
            log_probs = scaled - log_z
            token = self._draw(log_probs, request, rng)
            tokens.append(token)
            logprobs.append(float(np.float32(log_probs[token])))
            if want_entropies:
                p = np.exp(log_probs)
                entropies.append(float(np.float32(-(p * log_probs).sum())))
            if token in stops:
                finish = STOP
                break
            text += self.tokenizer.bytes(token)
            if any(s in text for s in stop_bytes):
                finish = STOP
                break
            if len(tokens) < limit:
                logits = self.model.forward([token], len(request.prompt_tokens) + len(tokens) - 1, cache)
        return Completion(tokens, logprobs, finish, entropies if want_entropies else None)

    @staticmethod
    def _draw(log_probs, request, rng):
        probs = np.exp(log_probs)
        if request.top_k and request.top_k < len(probs):
            cut = np.partition(probs, -request.top_k)[-request.top_k]
            probs = np.where(probs >= cut, probs, 0.0)
        if request.top_p < 1:
            order = np.argsort(-probs, kind="stable")
            cumulative = np.cumsum(probs[order]) / probs.sum()
            keep = order[: int(np.searchsorted(cumulative, request.top_p) + 1)]
            mask = np.zeros_like(probs)
            mask[keep] = 1
            probs = probs * mask
        probs /= probs.sum()
        return int(rng.choice(len(probs), p=probs))
