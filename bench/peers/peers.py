"""The peers' side of `troupe bench`, measured on this machine (docs/benchmarks.md, "The peers' side").

Writes a results file that `troupe bench model` and `troupe bench rl-step` read to print ratios from
one sitting. Each figure keeps every measured repeat (after one warm-up), so the Swift side can take
the median and refuse a figure whose repeats spread too far:

- rl_step/trl_grpo: TRL's GRPOTrainer on the workload `troupe bench rl-step --export-workload` wrote
  (the same weights, tokenizer and prompts), seconds per optimizer step;
- training/<shape>: PyTorch forward + backward + AdamW, batch 8 x 256 random tokens, tokens/s;
- sampling_batch8/<shape>: Hugging Face `generate`, batch 8, 16-token prompts, 128 new tokens, tokens/s;
- sampling_batch1/<shape>: llama.cpp (llama-cpp-python, an f32 GGUF of the same shape), batch 1, tokens/s.

Shapes are troupe's built-in ones (ModelShape.swift), with random weights.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

SHAPES = {
    # name: (vocab, hidden, intermediate, layers, heads, kv_heads, tied)
    "small": (4096, 512, 1408, 8, 8, 4, False),
    "smollm2-135m": (49152, 576, 1536, 30, 9, 3, True),
}


def machine():
    """The fingerprint troupe compares (MachineFingerprint in PeerResults.swift)."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return ""
    model, cpus = "", 0
    for line in read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpus += 1
        if key == "model name" and not model:
            model = value
    return {"cpu_model": model, "cpus": cpus, "machine_id": read("/etc/machine-id"),
            "boot_id": read("/proc/sys/kernel/random/boot_id")}


def llama_config(shape):
    from transformers import LlamaConfig
    vocab, hidden, inter, layers, heads, kv, tied = SHAPES[shape]
    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=512,
                       tie_word_embeddings=tied, rms_norm_eps=1e-5, rope_theta=10000.0)


def random_model(shape, seed=1):
    from transformers import LlamaForCausalLM
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(shape)).float()


def progress(text):
    print(f"... {text}", file=sys.stderr, flush=True)


def pytorch_training(shape, repeats, batch=8, length=256):
    model = random_model(shape)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, SHAPES[shape][0], (batch, length), generator=generator)
    rates = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        if r > 0:
            rates.append(batch * length / (time.perf_counter() - start))
    return rates


def hf_generate(shape, repeats, batch=8, prompt=16, new=128):
    model = random_model(shape)
    model.eval()
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, SHAPES[shape][0], (batch, prompt), generator=generator)
    rates = []
    with torch.inference_mode():
        for r in range(repeats + 1):
            start = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                 top_k=0, top_p=1.0, min_new_tokens=new, max_new_tokens=new, pad_token_id=0)
            produced = (out.shape[1] - prompt) * batch
            if r > 0:
                rates.append(produced / (time.perf_counter() - start))
    return rates


def write_gguf(shape, path):
    """An f32 GGUF of the random model, with a placeholder byte-level vocabulary of the shape's size."""
    import gguf
    vocab, hidden, inter, layers, heads, kv, tied = SHAPES[shape]
    state = {k: v.detach().numpy().astype(np.float32) for k, v in random_model(shape).state_dict().items()}
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(512)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_rope_dimension_count(hidden // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    tokens = [bytes([b]).decode("latin-1") for b in range(256)] + [f"<t{i}>" for i in range(256, vocab)]
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * vocab)
    w.add_token_merges(["a b"])  # llama.cpp refuses a gpt2 vocabulary without merges
    w.add_eos_token_id(vocab - 1)

    def permute(t, n_head):  # Hugging Face's rotate-half layout to llama.cpp's interleaved one
        return t.reshape(n_head, 2, t.shape[0] // n_head // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)

    w.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", state["model.norm.weight"])
    if not tied:
        w.add_tensor("output.weight", state["lm_head.weight"])
    for i in range(layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", permute(state[p + "self_attn.q_proj.weight"], heads))
        w.add_tensor(f"blk.{i}.attn_k.weight", permute(state[p + "self_attn.k_proj.weight"], kv))
        w.add_tensor(f"blk.{i}.attn_v.weight", state[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", state[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", state[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", state[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", state[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_batch1(shape, repeats, threads, prompt=16, new=128):
    from llama_cpp import Llama
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{shape}-f32.gguf")
        write_gguf(shape, path)
        llm = Llama(model_path=path, n_ctx=512, n_threads=threads, n_threads_batch=threads, n_batch=512, seed=1, verbose=False)
        rng = np.random.default_rng(1)
        tokens = [int(t) for t in rng.integers(0, SHAPES[shape][0] - 1, prompt)]
        rates = []
        for r in range(repeats + 1):
            llm.reset()
            start = time.perf_counter()
            produced = 0
            # generate() keeps going past an end token; stop at `new` tokens, as the other measures do.
            for _ in llm.generate(tokens, temp=1.0, top_k=0, top_p=1.0, min_p=0.0, reset=True):
                produced += 1
                if produced == new:
                    break
            if r > 0:
                rates.append(produced / (time.perf_counter() - start))
        del llm
    return rates


def trl_grpo(workload_dir, steps):
    """TRL's GRPOTrainer on the exported workload: seconds of each optimizer step after the first."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    with open(os.path.join(workload_dir, "workload.json")) as f:
        w = json.load(f)
    rows = [json.loads(line) for line in open(os.path.join(workload_dir, "tasks.jsonl")) if line.strip()]
    model_dir = os.path.join(workload_dir, "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])

    def exact_answer(completions, answer, **_):
        return [1.0 if c.strip().split("\n")[0].strip() == a else 0.0 for c, a in zip(completions, answer)]

    samples = w["prompts"] * w["group_size"]
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, use_cpu=True, bf16=False, seed=w["seed"], report_to="none", save_strategy="no", logging_steps=1,
            max_steps=steps + 1, per_device_train_batch_size=samples, gradient_accumulation_steps=1, steps_per_generation=1,
            num_iterations=1, num_generations=w["group_size"], max_completion_length=w["max_new_tokens"],
            temperature=w["temperature"], top_k=0, top_p=1.0, beta=0.0, loss_type="grpo", scale_rewards="group", epsilon=0.2,
            learning_rate=w["learning_rate"], lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch",
            dataloader_num_workers=0, shuffle_dataset=False, use_vllm=False, log_completions=False,
            # Troupe keeps activations rather than recompute them; so does TRL here (its default recomputes).
            gradient_checkpointing=False)

        class StepTimes(TrainerCallback):
            def __init__(self):
                self.seconds, self.start = [], None

            def on_step_begin(self, args, state, control, **kwargs):
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.seconds.append(time.perf_counter() - self.start)
                progress(f"TRL GRPO step {len(self.seconds)}: {self.seconds[-1]:.2f} s")

        times = StepTimes()
        trainer = GRPOTrainer(model=model, reward_funcs=exact_answer, args=config, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[times])
        trainer.train()
    if len(times.seconds) != steps + 1:
        raise SystemExit(f"TRL ran {len(times.seconds)} steps, expected {steps + 1}")
    return times.seconds[1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", required=True, help="the directory troupe bench rl-step --export-workload wrote")
    parser.add_argument("--out", required=True, help="the results file to write")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for PyTorch and llama.cpp (default: all CPUs)")
    parser.add_argument("--repeats", type=int, default=3, help="measured repeats of each model figure, after one warm-up")
    parser.add_argument("--rl-steps", type=int, default=5, help="TRL steps measured, after the first")
    parser.add_argument("--only", default="rl_step,training,sampling_batch8,sampling_batch1",
                        help="measures to run, separated by commas")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.rl_steps < 1:
        raise SystemExit("--threads, --repeats and --rl-steps must be at least 1")
    only = set(args.only.split(","))
    unknown = only - {"rl_step", "training", "sampling_batch8", "sampling_batch1"}
    if unknown:
        raise SystemExit(f"--only: unknown measures {sorted(unknown)}")
    torch.set_num_threads(args.threads)

    import transformers
    import trl
    software = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "trl": trl.__version__, "torch_threads": str(torch.get_num_threads())}
    figures = {}
    if "rl_step" in only:
        progress(f"TRL GRPOTrainer on {args.workload}, {args.rl_steps} + 1 steps")
        figures["rl_step/trl_grpo"] = {"peer": "TRL GRPOTrainer", "unit": "seconds_per_step",
                                       "values": trl_grpo(args.workload, args.rl_steps)}
    for shape in SHAPES:
        if "training" in only:
            progress(f"PyTorch training, {shape}")
            figures[f"training/{shape}"] = {"peer": "PyTorch", "unit": "tokens_per_s", "values": pytorch_training(shape, args.repeats)}
        if "sampling_batch8" in only:
            progress(f"Hugging Face generate, batch 8, {shape}")
            figures[f"sampling_batch8/{shape}"] = {"peer": "HF generate", "unit": "tokens_per_s", "values": hf_generate(shape, args.repeats)}
        if "sampling_batch1" in only:
            import llama_cpp
            software["llama_cpp_python"] = llama_cpp.__version__
            progress(f"llama.cpp, batch 1, {shape}")
            figures[f"sampling_batch1/{shape}"] = {"peer": "llama.cpp", "unit": "tokens_per_s",
                                                   "values": llama_cpp_batch1(shape, args.repeats, args.threads)}
    now = time.time()
    results = {"format": "troupe-peers/1", "unix_time": now,
               "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "machine": machine(),
               "software": software, "figures": figures}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, args.out)
    for key, figure in sorted(figures.items()):
        print(f"{key:32} {figure['peer']:16} median {float(np.median(figure['values'])):10.2f} {figure['unit']}  {figure['values']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
