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
    # Sample i's temperature (a multi-temperature group: SamplingParams.temperatures[i mod n]);
    # None: every sample at `temperature`.
    sample_temperatures: Optional[List[float]] = None


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
        """The group's samples decoded together, one batched forward per position; a finished sample
        keeps being fed (its output ignored) until all have finished."""
        n = request.group_size
        limit = min(request.max_tokens, self.config.max_positions - len(request.prompt_tokens))
        if limit <= 0:
            raise ValueError(f"the prompt ({len(request.prompt_tokens)} tokens) leaves no room in the model's context")
        stops = set(self.tokenizer.stop_tokens)
        stop_bytes = [s.encode("utf-8") for s in request.stop_sequences if s]
        prompt_cache = self.model.new_cache()
        logits = np.repeat(self.model.forward([request.prompt_tokens], 0, prompt_cache), n, axis=0)
        cache = self.model.repeat_cache(prompt_cache, n)
        out = [Completion([], [], LENGTH, [] if want_entropies else None) for _ in range(n)]
        texts = [b""] * n
        done = [False] * n
        temperatures = np.array(request.sample_temperatures or [request.temperature] * n, dtype=np.float64)[:, None]
        for position in range(limit):
            scaled = logits.astype(np.float64) / temperatures
            scaled -= scaled.max(axis=-1, keepdims=True)
            log_probs = scaled - np.log(np.exp(scaled).sum(axis=-1, keepdims=True))
            step_tokens = np.zeros((n, 1), dtype=np.int64)
            for i in range(n):
                if done[i]:
                    continue
                token = self._draw(log_probs[i], request, rng)
                step_tokens[i, 0] = token
                c = out[i]
                c.tokens.append(token)
                c.logprobs.append(float(np.float32(log_probs[i, token])))
                if want_entropies:
                    p = np.exp(log_probs[i])
                    c.entropies.append(float(np.float32(-(p * log_probs[i]).sum())))
                if token in stops:
                    c.finish_reason, done[i] = STOP, True
                    continue
                texts[i] += self.tokenizer.bytes(token)
                if any(s in texts[i] for s in stop_bytes):
                    c.finish_reason, done[i] = STOP, True
            if all(done) or position + 1 == limit:
                break
            logits = self.model.forward(step_tokens, len(request.prompt_tokens) + position, cache)
        return out

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
