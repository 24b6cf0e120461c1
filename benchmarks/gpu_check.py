"""GPU check: the kit's inference and GRPO training code, timed on a real accelerator.

Nothing can be downloaded on the accelerator, so the models are Qwen2-architecture networks
built from a config with random weights (the Qwen2.5-7B-Instruct shape and a 0.5B shape), in
bf16 on CUDA; token ids come from the bundled model's tokenizer. Random weights emit no sensible
end-of-sequence, so every reply is forced to the full length (``min_new_tokens``) for timing.

Inference: the kit's ``hf`` backend on the sliding-window workload (20 passages of 400
characters in the ``rearank`` template, 512 new tokens), batch sizes 1, 8, 32, 64: windows/s,
generated tokens/s, prefill tokens/s, peak GPU memory, and decode throughput against the
memory-bandwidth bound (bytes of weights, plus KV cache, read per decode step / HBM bandwidth).

Pipelined vs lock-step windows (``rank/windows.py``'s modes) with the hf backend: queries of 30
passages (two windows of 20, step 10) whose replies end at a length between 256 and 2,048 tokens,
fixed per prompt (a logits processor forces the end-of-sequence token there), batch 8:
windows/s in each mode, and whether both gave the same rankings.

Training: 2 GRPO steps of ``rearank_kit.train.generative`` with the 0.5B random model (bf16, gradient
checkpointing), LoRA and full fine-tuning: seconds per step and peak GPU memory.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json     # on a CUDA machine
    python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check_tiny.json       # CPU, tiny shapes (tests)

Results go to one JSON file (with a manifest); ``--markdown`` prints the BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# HBM bandwidth in bytes/s for the bound; the H200's is 4.8 TB/s (HBM3e).
HBM_BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12}

# Qwen2.5 shapes (config.json of the public checkpoints); "tiny" only exercises the code on CPU.
SHAPES = {
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}


# --- models with random weights ------------------------------------------------------------------


def build_model(shape: str, device: str, dtype):
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, rope_theta=1e6, use_cache=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def bundled_tokenizer():
    from transformers import AutoTokenizer

    from rearank_kit.rank.bundled import prepare_bundled_model

    tok = AutoTokenizer.from_pretrained(prepare_bundled_model())
    tok.padding_side = "left"
    return tok


def synthetic_window(n: int = 20, chars: int = 400, seed: int = 0) -> tuple[str, list[str]]:
    """A query and ``n`` passages of ``chars`` characters of plain English-like words."""
    rng = random.Random(seed)
    words = ("the of and to in is was for on that with as by at from it an be this are which or "
             "water energy light cells river city law market model data heat growth history").split()

    def text(k: int) -> str:
        out = ""
        while len(out) < k:
            out += rng.choice(words) + " "
        return out[:k]

    return "how does " + text(40).strip(), [text(chars) for _ in range(n)]


# --- inference -----------------------------------------------------------------------------------


def decode_bound(n_params: int, batch: int, context: int, shape: dict, bandwidth: float) -> dict:
    """Tokens/s if every decode step only had to read the weights (and the KV cache) from HBM."""
    weight_bytes = 2 * n_params  # bf16
    head_dim = shape["hidden_size"] // shape["num_attention_heads"]
    kv_bytes_per_token = 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * head_dim * 2
    step_weights = weight_bytes / bandwidth
    step_with_kv = (weight_bytes + batch * context * kv_bytes_per_token) / bandwidth
    return {"tokens_per_s_weights_only": batch / step_weights, "tokens_per_s_with_kv": batch / step_with_kv}


def time_inference(model, tokenizer, batch_sizes, new_tokens: int, device: str, bandwidth: float | None, shape: dict):
    import torch

    from rearank_kit.core.prompts import load_template
    from rearank_kit.rank.backends import GenerationConfig
    from rearank_kit.rank.backends.hf import HFBackend

    template = load_template("rearank")
    backend = HFBackend.from_model(model, tokenizer, model_id="random-qwen2")
    n_params = sum(p.numel() for p in model.parameters())
    cuda = device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def run(conversations, n):
        model.generation_config.min_new_tokens = n  # no early end-of-sequence: fixed length
        sync()
        t = time.perf_counter()
        outs = backend.generate(conversations, GenerationConfig(max_new_tokens=n, batch_size=len(conversations)))
        sync()
        return time.perf_counter() - t, outs

    rows = []
    for b in batch_sizes:
        convs = []
        for i in range(b):
            query, passages = synthetic_window(seed=i)
            convs.append(template.messages(query, passages))
        try:
            run(convs[:1], 2)  # warm-up: kernels, allocator
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t_prefill, outs1 = run(convs, 1)
            t_total, outs = run(convs, new_tokens)
        except torch.OutOfMemoryError:
            rows.append({"batch": b, "error": "out of memory"})
            break
        prompt_tokens = sum(o.prompt_tokens for o in outs)
        generated = sum(o.output_tokens for o in outs)
        decode_s = max(t_total - t_prefill, 1e-9)
        row = {
            "batch": b,
            "prompt_tokens_mean": prompt_tokens / b,
            "new_tokens": new_tokens,
            "generated_tokens": generated,
            "seconds": t_total,
            "prefill_seconds": t_prefill,
            "windows_per_s": b / t_total,
            "generated_tokens_per_s": generated / t_total,
            "decode_tokens_per_s": (generated - b) / decode_s,
            "prefill_tokens_per_s": prompt_tokens / t_prefill,
            "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        }
        if bandwidth:
            bound = decode_bound(n_params, b, int(row["prompt_tokens_mean"]) + new_tokens // 2, shape, bandwidth)
            row.update(bound)
            row["fraction_of_bound_weights_only"] = row["decode_tokens_per_s"] / bound["tokens_per_s_weights_only"]
            row["fraction_of_bound_with_kv"] = row["decode_tokens_per_s"] / bound["tokens_per_s_with_kv"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"parameters": n_params, "rows": rows}


# --- pipelined vs lock-step windows ----------------------------------------------------------------


class ForcedLengths:
    """Ends each reply after a number of tokens fixed by its prompt (``lo``-``hi``, from a checksum of
    the prompt's ids), end-of-sequence token included: random weights never stop on their own, and
    varied reply lengths are what lock-step windows wait on."""

    def __init__(self, prompts: list[list[int]], lo: int, hi: int, eos: int, device):
        import zlib

        import torch

        self.targets = torch.tensor([lo + zlib.crc32(str(ids).encode()) % (hi - lo + 1) for ids in prompts], device=device)
        self.eos, self.width = eos, None

    def __call__(self, input_ids, scores):
        if self.width is None:
            self.width = input_ids.shape[1]
        end = self.targets <= input_ids.shape[1] - self.width + 1  # rows whose next token is their last
        scores[end] = float("-inf")
        scores[end, self.eos] = 0.0
        scores[~end, self.eos] = float("-inf")
        return scores


def time_pipelined(model, tokenizer, device: str, queries: int, lengths: tuple[int, int], batch: int) -> dict:
    """The same windows in lock-step (``mode="batched"``) and pipelined: windows/s of each."""
    from transformers import LogitsProcessorList

    from rearank_kit.core.prompts import load_template
    from rearank_kit.core.records import Candidate, Query, Ranking
    from rearank_kit.rank.backends.hf import HFBackend
    from rearank_kit.rank.settings import RerankConfig
    from rearank_kit.rank.windows import rerank_queries

    template = load_template("rearank")
    rankings = []
    for q in range(queries):
        query, passages = synthetic_window(n=30, seed=1000 + q)
        rankings.append(Ranking(Query(f"q{q}", query), [Candidate(f"q{q}-d{i}", p, i + 1) for i, p in enumerate(passages)]))
    backend = HFBackend.from_model(model, tokenizer, model_id="random-qwen2")
    model.generation_config.min_new_tokens = None  # time_inference fixed the length; here the prompt does
    generate = model.generate

    def forced(*args, **kwargs):
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True)]
        kwargs["logits_processor"] = LogitsProcessorList([ForcedLengths(rows, *lengths, tokenizer.eos_token_id, model.device)])
        return generate(*args, **kwargs)

    model.generate = forced
    report = {"queries": queries, "windows_per_query": 2, "reply_tokens": list(lengths), "batch": batch, "modes": {}}
    ranked = {}
    try:
        for mode in ("batched", "pipelined"):
            config = RerankConfig(top_k=30, window=20, step=10, template="rearank", max_new_tokens=lengths[1],
                                  batch_size=batch, mode=mode, group_size=queries).resolved(template)  # fmt: skip
            traces: list[dict] = []
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            t = time.perf_counter()
            ranked[mode] = [r.docids for r in rerank_queries(rankings, backend, config, template, {}, None, False,
                                                              on_trace=traces.append)]  # fmt: skip
            seconds = time.perf_counter() - t
            report["modes"][mode] = {"seconds": seconds, "windows": len(traces), "windows_per_s": len(traces) / seconds,
                                     "generated_tokens": sum(t["output_tokens"] for t in traces)}  # fmt: skip
            print(json.dumps({"pipelined_check": mode, **report["modes"][mode]}), flush=True)
    finally:
        del model.generate  # the model's own method again
    b, p = report["modes"]["batched"], report["modes"]["pipelined"]
    report["pipelined_over_lockstep_windows_per_s"] = p["windows_per_s"] / b["windows_per_s"]
    report["same_rankings"] = ranked["batched"] == ranked["pipelined"]
    return report


# --- training ------------------------------------------------------------------------------------


def time_training(shape: str, device: str, tokenizer, work: Path, steps: int, tiny: bool,
                  modes=("lora", "full")) -> list[dict]:
    """2 GRPO steps of the kit's trainer on a saved random model, LoRA and full fine-tuning."""
    import dataclasses

    import torch

    from rearank_kit.train.augment import AugmentConfig, run_augment
    from rearank_kit.train.generative import train
    from rearank_kit.train.presets import CPU_TINY

    dtype = torch.float32 if tiny else torch.bfloat16
    model_dir = work / f"model-{shape}"
    build_model(shape, "cpu", dtype).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = work / "aug"
    if not data.exists():
        run_augment(str(REPO / "data" / "sample"), data, AugmentConfig(samples_per_query=8, window=5, template="rearank"),
                    overwrite=False, progress=False)
    results = []
    for mode, lora_r in (("lora", 16), ("full", 0)):
        if mode not in modes:
            continue
        config = dataclasses.replace(
            CPU_TINY, preset=f"gpu-check-{mode}", model=str(model_dir), template="rearank", lenient=False,
            max_steps=steps, lora_r=lora_r, learning_rate=1e-5 if lora_r == 0 else 1e-4,
            max_completion_length=16 if tiny else 256, num_generations=4, per_device_train_batch_size=4,
            bf16=not tiny, use_cpu=tiny, gradient_checkpointing=True, save_steps=1000, torch_threads=None,
        )
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        result = train(config, data, work / f"run-{mode}", echo=False)
        seconds = time.perf_counter() - t
        step_times = [r["step_time"] for r in result.records if isinstance(r.get("step_time"), (int, float))]
        results.append({
            "mode": mode, "steps": len(result.records), "wall_seconds": seconds,
            "seconds_per_step": (sum(step_times) / len(step_times)) if step_times else seconds / max(steps, 1),
            "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
            "loss": [r.get("loss") for r in result.records],
        })
        print(json.dumps(results[-1]), flush=True)
    return results


# --- report --------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    lines = [f"### GPU check ({report['date']}, {report['device']})", ""]
    for name, inf in report["inference"].items():
        lines += [f"**{name}** ({inf['parameters'] / 1e9:.2f} B parameters, random weights, {report['dtype']}, hf backend, "
                  f"rearank template, 20 x 400-character passages, {report['new_tokens']} new tokens)", "",
                  "| batch | windows/s | generated tok/s | prefill tok/s | decode tok/s | of bandwidth bound | peak GiB |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in inf["rows"]:
            if "error" in r:
                lines.append(f"| {r['batch']} | {r['error']} | | | | | |")
                continue
            frac = r.get("fraction_of_bound_weights_only")
            frac_s = "" if frac is None else f"{frac:.0%}"
            mem = r["peak_gpu_memory_gib"]
            mem_s = "" if mem is None else f"{mem:.1f}"
            lines.append(
                f"| {r['batch']} | {r['windows_per_s']:.2f} | {r['generated_tokens_per_s']:.0f} | "
                f"{r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.0f} | {frac_s} | {mem_s} |")
        lines.append("")
    piped = report.get("pipelined")
    if piped:
        b, p = piped["modes"]["batched"], piped["modes"]["pipelined"]
        lines += [f"**Pipelined vs lock-step windows** ({piped['shape']}, hf backend, {piped['queries']} queries x 2 "
                  f"windows, replies of {piped['reply_tokens'][0]}-{piped['reply_tokens'][1]} tokens, batch "
                  f"{piped['batch']}): lock-step {b['windows_per_s']:.3f} windows/s, pipelined {p['windows_per_s']:.3f} "
                  f"({piped['pipelined_over_lockstep_windows_per_s']:.2f}x), same rankings: {piped['same_rankings']}", ""]
    if report.get("training"):
        lines += [f"| GRPO ({report['train_shape']}, {report['dtype']}, grad. checkpointing) | s/step | peak GiB |",
                  "| --- | --- | --- |"]
        for t in report["training"]:
            mem = "" if t["peak_gpu_memory_gib"] is None else f"{t['peak_gpu_memory_gib']:.1f}"
            lines.append(f"| {t['mode']} | {t['seconds_per_step']:.1f} | {mem} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (what the tests run)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,8,32,64; tiny: 1,2)")
    ap.add_argument("--new-tokens", type=int, default=None, help="default 512 (tiny: 8)")
    ap.add_argument("--skip-7b", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-pipelined", action="store_true", help="no pipelined vs lock-step measurement")
    ap.add_argument("--pipelined-queries", type=int, default=None, help="default 8 (tiny: 3)")
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--train-modes", default="lora,full", help="comma-separated: lora, full")
    ap.add_argument("--markdown", action="store_true", help="also print the BENCHMARKS.md section")
    args = ap.parse_args(argv)

    import torch

    from rearank_kit.core.manifest import build_manifest

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny on a CPU", file=sys.stderr)
        return 2
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.bfloat16
    name = "CPU" if args.tiny else torch.cuda.get_device_name(0)
    bandwidth = next((bw for key, bw in HBM_BANDWIDTH.items() if key in name), None)
    batch_sizes = [int(b) for b in (args.batch_sizes or ("1,2" if args.tiny else "1,8,32,64")).split(",")]
    new_tokens = args.new_tokens or (8 if args.tiny else 512)
    shapes = ["tiny"] if args.tiny else (["qwen2.5-0.5b"] if args.skip_7b else ["qwen2.5-7b", "qwen2.5-0.5b"])

    tokenizer = bundled_tokenizer()
    report = {"date": time.strftime("%Y-%m-%d"), "device": name, "hbm_bandwidth_bytes_per_s": bandwidth,
              "dtype": str(dtype).replace("torch.", ""), "train_shape": "tiny" if args.tiny else "qwen2.5-0.5b",
              "new_tokens": new_tokens, "inference": {}, "training": []}
    for shape in shapes:
        model = build_model(shape, device, dtype)
        report["inference"][shape] = time_inference(model, tokenizer, batch_sizes, new_tokens, device, bandwidth,
                                                    SHAPES[shape])
        if shape == shapes[0] and not args.skip_pipelined:  # the 7B shape on a GPU
            queries = args.pipelined_queries or (3 if args.tiny else 8)
            lengths, batch = ((4, 16), 2) if args.tiny else ((256, 2048), 8)
            report["pipelined"] = {"shape": shape, **time_pipelined(model, tokenizer, device, queries, lengths, batch)}
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    if not args.skip_training:
        work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        try:
            report["training"] = time_training(report["train_shape"], device, tokenizer, work, args.train_steps,
                                               args.tiny, modes=args.train_modes.split(","))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report["manifest"] = build_manifest("gpu_check", seed=0, tiny=args.tiny)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        print(markdown(report))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
