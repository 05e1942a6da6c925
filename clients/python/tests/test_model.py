"""The numpy policy against transformers' float64 reference (Tests/Fixtures, made by the scripts in
scripts/fixtures and the shared fixtures): logits at every position, fed all at once and one token at a
time through the cache, for a Llama model, Llama 3 RoPE scaling, Llama's q/k/v/o biases and Qwen3's query
and key norms.
    .build/venv-interop/bin/python -m unittest discover -s clients/python/tests"""
import json
import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from troupe_client.model import LlamaModel, ModelConfig, UnsupportedModel  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Tests", "Fixtures")
DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """name -> array, for the dtypes the fixtures use."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        arrays[name] = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return arrays


def load(folder):
    with open(os.path.join(FIXTURES, folder, "config.json")) as f:
        config = ModelConfig(json.load(f))
    return LlamaModel(config, read_safetensors(os.path.join(FIXTURES, folder, "model.safetensors")))


class ModelTests(unittest.TestCase):
    def check(self, folder, reference, ids_name, logits_name):
        model = load(folder)
        ref = read_safetensors(os.path.join(FIXTURES, folder, reference))
        ids = ref[ids_name].astype(np.int64)
        expected = ref[logits_name]
        # All at once: the last position; then token by token through the cache: every position.
        whole = model.forward(ids[None], 0, model.new_cache())[0]
        self.assertLess(np.abs(whole - expected[-1]).max(), 1e-4)
        cache = model.new_cache()
        worst = max(np.abs(model.forward(ids[None, t:t + 1], t, cache)[0] - expected[t]).max() for t in range(len(ids)))
        self.assertLess(worst, 1e-4, f"{folder}: logits differ by {worst}")
        return model

    def test_llama(self):
        self.check("llama-tiny", "fixture/fixture.safetensors", "input_ids", "logits_f64")

    def test_llama3_rope_scaling(self):
        model = self.check("llama3-rope-tiny", "fixture/fixture.safetensors", "input_ids", "logits_f64")
        self.assertEqual(model.c.rope_type, "llama3")

    def test_qwen3_query_and_key_norms(self):
        model = self.check("qwen3-tiny", "fixture/fixture.safetensors", "input_ids_0", "logits_0_f64")
        self.assertTrue(model.c.query_key_norm)

    def test_llama_attention_biases(self):
        model = self.check("llama-bias-tiny", "fixture/fixture.safetensors", "input_ids", "logits_f64")
        self.assertIn("model.layers.0.self_attn.o_proj.bias", model.w)

    def test_rope_read_as_transformers_reads_it(self):
        base = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 4, "max_position_embeddings": 4096}
        both = ModelConfig({**base, "rope_theta": 7.0, "rope_scaling": {"type": "linear", "factor": 2},
                            "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 9.0}})
        self.assertEqual((both.rope_type, both.theta), ("linear", 7.0))
        self.assertEqual(ModelConfig({**base, "rope_parameters": {"rope_theta": 9.0}}).rope_type, "default")
        llama3 = {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4}
        self.assertEqual(ModelConfig({**base, "rope_scaling": llama3}).rope_scaling["original_max_position_embeddings"], 4096)
        top = ModelConfig({**base, "original_max_position_embeddings": 32,
                           "rope_scaling": {**llama3, "original_max_position_embeddings": 64}})
        self.assertEqual(top.rope_scaling["original_max_position_embeddings"], 32)

    def test_refusals(self):
        base = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 4, "max_position_embeddings": 8}
        for extra, words in [({"model_type": "gemma"}, "model_type 'gemma'"),
                             ({"rope_scaling": {"rope_type": "yarn", "factor": 4}}, "rope scaling 'yarn'"),
                             ({"rope_parameters": {"rope_type": "dynamic", "factor": 2}}, "rope scaling 'dynamic'"),
                             ({"rope_scaling": {"factor": 2}}, "rope scaling None"),
                             ({"rope_scaling": {"rope_type": "llama3", "factor": 8}}, "without low_freq_factor")]:
            with self.assertRaises(UnsupportedModel) as caught:
                ModelConfig({**base, **extra})
            self.assertIn(words, str(caught.exception))


if __name__ == "__main__":
    unittest.main()
