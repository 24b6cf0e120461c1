"""What one GRPO step would cost if the scored policy tuned the model's top layers (LoRA) instead of
a head on frozen states: the rung of the learning issue that was not run, measured, not estimated.

    .venv/bin/python benchmarks/top_layer_tuning.py                     # 1 layer, 16 sets of 20, 4 steps
    .venv/bin/python benchmarks/top_layer_tuning.py --tuned-layers 1,3

The scored policy (``rank/scored.py``) reads the bundled model's state after layer ``L`` at the last
token of each pair prompt. Tuning layers ``L-K+1 .. L`` with LoRA keeps everything below them
frozen, so their inputs (every token's state after layer ``L-K``) could be cached once, as
``rank/states.py`` caches the last token's. What cannot be cached is the tuned layers themselves:
each step runs them forwards and backwards over every token of every pair of the step's sets. This
script builds exactly that step on real pairs (the first ``--sets`` x ``--window`` pairs of DL21's
BM25 top 100, or the sample's) and times it:

1. every token's state after layer ``L-K``, computed once with the model (the cache's part, timed
   apart);
2. per step: the ``K`` decoder layers with LoRA adapters (rank ``--rank`` on the attention and MLP
   projections, peft) over those states, the last token's output through a linear head to one score
   per passage, a Plackett-Luce log-likelihood of one sampled ranking per set as a stand-in loss of
   the same shape as GRPO's, backward, an Adam step.

Reported: seconds per step, the minutes of a 300-step training (the reference run's), and the
hours of a 5-fold cross-validation with one fixed setting (five trainings and a final one) and with
the reference run's nine-setting grid. Timings move with the load of a shared machine: the load
average is recorded beside them. Results: ``benchmarks/results/top_layer_tuning.json``
(BENCHMARKS.md, "The scored policy").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _shared_data import use_shared_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "top_layer_tuning.json"
STEPS_PER_TRAINING = 300  # the reference run's (data/runs/scored-grpo-dl21)
GRID = 9  # the reference run's settings per fold: layers {12, 15, 18} x 3 (step size, steps)


def pair_texts(sets: int, window: int) -> tuple[str, list[str]]:
    from rearank_kit.core.prompts import load_pair_prompt
    from rearank_kit.data.benchmarks import available_benchmarks, load_benchmark
    from rearank_kit.rank.policy import load_hf_model

    use_shared_data()
    data = "dl21" if "dl21" in available_benchmarks() else "sample"
    prompt = load_pair_prompt("relevance")
    _, tokenizer = load_hf_model("smollm2-135m")
    texts = []
    for ranking in load_benchmark(data, top_k=100).rankings:
        for cand in ranking.candidates[:window]:
            texts.append(prompt.render(tokenizer, ranking.query.text, cand.text))
    need = sets * window
    return data, (texts * (need // max(len(texts), 1) + 1))[:need]  # the sample is small: repeat it


def measure(tuned: int, layer: int, texts: list[str], sets: int, window: int, rank: int, steps: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    from rearank_kit.rank.policy import load_hf_model

    model, tokenizer = load_hf_model("smollm2-135m")
    inner = model.model
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False, padding_side="right")
    below = layer - tuned  # the frozen layers whose every-token output would be cached
    started = time.perf_counter()
    with torch.no_grad():
        states = inner(**enc, output_hidden_states=True, use_cache=False).hidden_states
    hidden, target = states[below], states[layer]
    cache_seconds = time.perf_counter() - started
    # The tuned layers alone, as a small module that takes the cached states.
    top = torch.nn.ModuleList(inner.layers[below:layer])
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                      "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    wrapper = torch.nn.Module()
    wrapper.layers = top
    wrapper = get_peft_model(wrapper, lora)
    head = torch.nn.Linear(hidden.shape[-1], 1)
    params = [p for p in wrapper.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-4)
    mask = enc["attention_mask"]
    last = mask.sum(1) - 1
    positions = torch.arange(hidden.shape[1]).unsqueeze(0).expand(len(texts), -1)
    rotary = inner.rotary_emb(hidden, positions)
    causal = torch.full((hidden.shape[1], hidden.shape[1]), float("-inf")).triu(1)
    attn = causal[None, None] + torch.where(mask[:, None, None, :] > 0, 0.0, float("-inf"))
    times = []
    for step_no in range(steps):
        t0 = time.perf_counter()
        x = hidden
        for block in wrapper.base_model.model.layers:
            x = block(x, attention_mask=attn, position_ids=positions, position_embeddings=rotary)
            x = x[0] if isinstance(x, tuple) else x
        read = x[torch.arange(len(texts)), last]
        if step_no == 0:  # LoRA starts at zero: the tuned layers must give back the model's own states
            rows = torch.arange(len(texts))
            assert torch.allclose(read, target[rows, last], atol=1e-3), "the layers run here are not the model's"
        scores = head(read).view(sets, window)
        order = torch.multinomial(torch.softmax(scores.detach(), -1), window)  # one sampled ranking a set
        ranked = scores.gather(1, order)
        logp = (ranked - torch.logcumsumexp(ranked.flip(1), 1).flip(1)).sum(1)  # Plackett-Luce
        loss = -logp.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    timed = times[1:] or times  # the first step pays for allocation and one-off set-up
    # each figure is derived from the rounded one printed before it, so the report's numbers agree
    # with each other exactly (up to the last rounding) rather than each to its own unrounded source
    step = round(sorted(timed)[len(timed) // 2], 2)
    minutes = round(step * STEPS_PER_TRAINING / 60, 2)
    return {"tuned_layers": tuned, "layers": f"{below + 1}-{layer}", "lora_rank": rank,
            "trainable_parameters": sum(p.numel() for p in params), "pairs_per_step": len(texts),
            "tokens_per_pair": int(hidden.shape[1]), "cache_seconds": round(cache_seconds, 1),
            "step_seconds": [round(t, 2) for t in times], "median_step_seconds": step,
            "minutes_per_training": minutes, "hours_cv_one_setting": round(6 * minutes / 60, 2),
            "hours_cv_grid": round((5 * GRID + 1) * minutes / 60, 2), "load_after": os.getloadavg()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuned-layers", default="1", help="comma-separated K: tune the top K layers below --layer")
    parser.add_argument("--layer", type=int, default=15, help="the layer the head reads (the reference run: 12-18)")
    parser.add_argument("--sets", type=int, default=16, help="sets a step (the reference run's)")
    parser.add_argument("--window", type=int, default=20, help="passages a set (the reference run's)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="steps timed (the first one is left out of the median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, texts = pair_texts(args.sets, args.window)
    result = {"data": data, "threads": args.threads, "load_before": os.getloadavg(), "runs": []}
    for k in (int(x) for x in args.tuned_layers.split(",")):
        result["runs"].append(measure(k, args.layer, texts, args.sets, args.window, args.rank, args.steps))
        print(json.dumps(result["runs"][-1]), flush=True)
    from rearank_kit.core.files import write_json
    from rearank_kit.core.manifest import build_manifest

    write_json(args.json, {**build_manifest("benchmark", script="benchmarks/top_layer_tuning.py"), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
