"""The Llama-family policy in numpy, from the learner's published weights (Hugging Face names, the
safetensors layout of the weight blob): RMSNorm, rotary embeddings in the rotate-half convention (with
linear or Llama 3 frequency scaling), grouped-query attention, SwiGLU, optionally tied output head, q/k/v
biases (Qwen2; Llama and Qwen3 with attention_bias, which also gives o_proj one) and per-head query and key
norms (Qwen3). Float32 like the learner, so behaviour log-probs
agree with its own to float rounding (mismatch_kl in the run log)."""
import math

import numpy as np

MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral", "troupe")


class UnsupportedModel(Exception):
    pass


class ModelConfig:
    def __init__(self, config):
        def need(key):
            if key not in config:
                raise UnsupportedModel(f"model config.json has no {key}")
            return config[key]
        model_type = config.get("model_type", "llama")
        if model_type not in MODEL_TYPES:
            raise UnsupportedModel(f"model_type {model_type!r}: only {', '.join(MODEL_TYPES)} are implemented")
        self.query_key_norm = model_type == "qwen3"
        if config.get("hidden_act", "silu") != "silu":
            raise UnsupportedModel(f"hidden_act {config.get('hidden_act')!r}: only silu is implemented")
        # As transformers 5 reads them: rope_scaling when it holds anything, else rope_parameters; the
        # theta from that object, else the top level's.
        scaling = dict(config.get("rope_scaling") or config.get("rope_parameters") or {})
        if set(scaling) <= {"rope_theta", "partial_rotary_factor"}:
            scaling["rope_type"] = "default"
        self.rope_type = scaling.get("rope_type", scaling.get("type"))
        if self.rope_type not in ("default", "linear", "llama3"):
            raise UnsupportedModel(f"rope scaling {self.rope_type!r}: only linear and llama3 are implemented")
        if self.rope_type == "llama3":
            # A top-level original_max_position_embeddings wins (transformers' rule), else the object's,
            # else max_position_embeddings.
            original = config.get("original_max_position_embeddings", scaling.get("original_max_position_embeddings"))
            scaling["original_max_position_embeddings"] = original if original is not None else need("max_position_embeddings")
        needed = {"linear": ["factor"], "llama3": ["factor", "low_freq_factor", "high_freq_factor"]}
        for key in needed.get(self.rope_type, []):
            if key not in scaling:
                raise UnsupportedModel(f"rope scaling {self.rope_type!r} without {key}")
        self.rope_scaling = scaling
        if config.get("use_sliding_window"):
            raise UnsupportedModel("sliding-window attention is not implemented")
        self.hidden = int(need("hidden_size"))
        self.heads = int(need("num_attention_heads"))
        self.kv_heads = int(config.get("num_key_value_heads", self.heads))
        # Qwen3Config's own default is 128; the others divide the hidden size among the heads.
        self.head_dim = int(config.get("head_dim") or (128 if model_type == "qwen3" else self.hidden // self.heads))
        self.layers = int(need("num_hidden_layers"))
        self.vocab = int(need("vocab_size"))
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        self.theta = float(scaling.get("rope_theta", config.get("rope_theta", 10000.0)))
        self.max_positions = int(need("max_position_embeddings"))
        self.tied = bool(config.get("tie_word_embeddings", False))

    def inverse_frequencies(self):
        """Each pair of head dimensions' angle per position, scaled as the configuration says (as
        transformers' default, linear and llama3 RoPE initialisations compute them)."""
        half = self.head_dim // 2
        inv = 1.0 / np.power(self.theta, np.arange(half, dtype=np.float64) * 2 / self.head_dim)
        s = self.rope_scaling
        if self.rope_type == "linear":
            return inv / float(s["factor"])
        if self.rope_type == "llama3":
            factor, low, high = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
            context = float(s["original_max_position_embeddings"])
            wavelength = 2 * math.pi / inv
            smooth = (context / wavelength - low) / (high - low)
            blended = (1 - smooth) * inv / factor + smooth * inv
            return np.where(wavelength > context / low, inv / factor, np.where(wavelength < context / high, inv, blended))
        return inv


class LlamaModel:
    def __init__(self, config, tensors):
        """`tensors`: name -> float32 array, as the manifest names and shapes them."""
        self.c = config
        self.w = tensors
        if "model.embed_tokens.weight" not in tensors:
            raise UnsupportedModel("the weights have no model.embed_tokens.weight")
        self.head = tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"] if config.tied else None)
        if self.head is None:
            raise UnsupportedModel("no lm_head.weight and tie_word_embeddings is false")
        inv = self.c.inverse_frequencies()
        angles = np.arange(self.c.max_positions, dtype=np.float64)[:, None] * inv[None, :]
        self.cos = np.cos(angles).astype(np.float32)
        self.sin = np.sin(angles).astype(np.float32)

    def _norm(self, x, weight):
        variance = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
        return (x / np.sqrt(variance + np.float32(self.c.eps))).astype(np.float32) * weight

    def _rope(self, x, positions):
        # x: (batch, tokens, heads, head_dim)
        half = self.c.head_dim // 2
        cos = self.cos[positions][None, :, None, :]
        sin = self.sin[positions][None, :, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def new_cache(self, batch=1):
        empty = np.zeros((batch, 0, self.c.kv_heads, self.c.head_dim), np.float32)
        return [(empty, empty) for _ in range(self.c.layers)]

    @staticmethod
    def repeat_cache(cache, batch):
        """A batch-1 cache (a prompt's) copied for `batch` sequences that continue it."""
        return [(np.repeat(k, batch, axis=0), np.repeat(v, batch, axis=0)) for k, v in cache]

    def forward(self, tokens, start, cache):
        """Logits (float32, (batch, vocab)) of the last position after feeding `tokens` ((batch, count)
        ids) at positions start...; `cache` (keys and values per layer) grows in place."""
        c = self.c
        tokens = np.asarray(tokens)
        batch, count = tokens.shape
        positions = np.arange(start, start + count)
        x = self.w["model.embed_tokens.weight"][tokens]           # (batch, count, hidden)
        group = c.heads // c.kv_heads
        for layer in range(c.layers):
            p = f"model.layers.{layer}."
            h = self._norm(x, self.w[p + "input_layernorm.weight"])

            def project(name, heads):
                y = h @ self.w[p + f"self_attn.{name}.weight"].T
                bias = self.w.get(p + f"self_attn.{name}.bias")
                y = y + bias if bias is not None else y
                return y.reshape(batch, count, heads, c.head_dim)
            q, k = project("q_proj", c.heads), project("k_proj", c.kv_heads)
            if c.query_key_norm:
                q = self._norm(q, self.w[p + "self_attn.q_norm.weight"])
                k = self._norm(k, self.w[p + "self_attn.k_norm.weight"])
            q, k = self._rope(q, positions), self._rope(k, positions)
            v = project("v_proj", c.kv_heads)
            keys = np.concatenate([cache[layer][0], k], axis=1)
            values = np.concatenate([cache[layer][1], v], axis=1)
            cache[layer] = (keys, values)
            kh = np.repeat(keys, group, axis=2)    # (batch, total, heads, dim)
            vh = np.repeat(values, group, axis=2)
            scores = np.einsum("bthd,bshd->bhts", q, kh) / np.float32(np.sqrt(c.head_dim))
            total = keys.shape[1]
            mask = np.arange(total)[None, :] > positions[:, None]
            scores = np.where(mask[None, None], np.float32(-np.inf), scores)
            scores = scores - scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            attention = np.einsum("bhts,bshd->bthd", weights, vh).reshape(batch, count, c.heads * c.head_dim)
            output = attention @ self.w[p + "self_attn.o_proj.weight"].T
            bias = self.w.get(p + "self_attn.o_proj.bias")
            x = x + (output + bias if bias is not None else output)
            h = self._norm(x, self.w[p + "post_attention_layernorm.weight"])
            gate = h @ self.w[p + "mlp.gate_proj.weight"].T
            up = h @ self.w[p + "mlp.up_proj.weight"].T
            x = x + ((gate / (1 + np.exp(-gate))) * up) @ self.w[p + "mlp.down_proj.weight"].T
        last = self._norm(x[:, -1], self.w["model.norm.weight"])
        return (last @ self.head.T).astype(np.float32)
