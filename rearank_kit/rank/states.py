"""What a language model makes of one (query, passage): hidden states, computed once and cached.

A scored policy (``scored.py``) does not read the model's text output; it reads the model's hidden
state at the last token of a pair prompt (``core/templates/pairs/``), e.g. "Query: ... Passage: ...
Is the passage relevant to the query? Answer:", after ``L`` of its decoder layers. Those states
do not change while a head on top of them trains, so they are computed once per (model, prompt,
layer, pair) and kept on disk: training reads a few megabytes instead of running the model.

Layer ``L`` is ``hidden_states[L]`` of the whole model in transformers: the output of the first
``L`` decoder layers (0 is the embeddings; the last layer's comes through the final norm). Only
the layers up to the deepest one asked for (and one more, see ``_Extractor``) are run, which
halves the cost of layer 15 of SmolLM2's 30.

A cache folder holds ``manifest.json`` (its key: model, its source and a fingerprint of its
config, the prompt's name and hash, the layers; a cache made for another key is refused, naming
both), ``pairs.jsonl`` (one ``{"qid", "docid"}`` per row, in the order of the rows) and
``chunks/NNNNN.npy`` (float16 ``[rows, layers, hidden]``). Chunks are written whole and logged after
they land, so an interrupted build resumes where it stopped and a cache can grow (the top 30
first, the top 100 later) without recomputing a pair.

    from rearank_kit.rank.states import build_states
    cache = build_states(load_benchmark("dl21", top_k=100), "runs/states-dl21", layers=(15,))
    cache.matrix("646091", ["msmarco_passage_08_24643970"])      # (1, 1, 576) float32
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import append_jsonl, iter_jsonl
from rearank_kit.core.manifest import read_manifest, write_manifest
from rearank_kit.core.prompts import PairPrompt, load_pair_prompt
from rearank_kit.core.records import Benchmark

PAIRS_LOG = "pairs.jsonl"
CHUNKS = "chunks"
CHUNK_PAIRS = 256  # pairs per chunk file: at most this much work is redone after an interruption


@dataclass(frozen=True)
class StateKey:
    """What a cached state depends on; a cache answers only for its own key."""

    model: str  # as the user named it (preset, folder or hub id)
    model_source: str  # the folder or hub id the weights came from
    model_fingerprint: str  # sha256 of the model's config.json (or the hub id): another model, another key
    prompt: str
    prompt_hash: str
    layers: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": list(self.layers)}


def model_fingerprint(source: str) -> str:
    config = Path(source) / "config.json"
    if config.is_file():
        return hashlib.sha256(config.read_bytes()).hexdigest()[:16]
    return f"hub:{source}"


def state_key(model: str, prompt: PairPrompt, layers: Sequence[int]) -> StateKey:
    from rearank_kit.rank.models import resolve_model

    _, source = resolve_model(model)
    layers = tuple(sorted({int(x) for x in layers}))
    if not layers or layers[0] < 0:
        raise KitError(f"layers must be non-negative layer numbers, got {list(layers)}")
    return StateKey(str(model), str(source), model_fingerprint(str(source)), prompt.name, prompt.hash, layers)


# --- the cache on disk ---------------------------------------------------------------------------


class StateCache:
    """The states of the pairs of one folder, indexed by (qid, docid)."""

    def __init__(self, folder: Path, key: StateKey, pairs: list[tuple[str, str]], states: np.ndarray) -> None:
        self.folder, self.key, self.pairs, self.states = folder, key, pairs, states
        self.index = {p: i for i, p in enumerate(pairs)}

    def __len__(self) -> int:
        return len(self.pairs)

    def has(self, qid: str, docid: str) -> bool:
        return (str(qid), str(docid)) in self.index

    def matrix(self, qid: str, docids: Sequence[str], layers: Sequence[int] | None = None) -> np.ndarray:
        """float32 ``[len(docids), len(layers), hidden]`` for one query's passages (all layers of
        the cache when ``layers`` is None); a missing pair is a KitError naming it."""
        rows = []
        for d in docids:
            i = self.index.get((str(qid), str(d)))
            if i is None:
                raise KitError(f"{self.folder}: no state for query {qid}, passage {d}; build the cache for this data "
                               "first (rearank-kit states --data ... --out this folder)")
            rows.append(i)
        cols = list(range(len(self.key.layers))) if layers is None else [self.layer_index(x) for x in layers]
        return self.states[np.ix_(rows, cols)].astype(np.float32)

    def layer_index(self, layer: int) -> int:
        if layer not in self.key.layers:
            raise KitError(f"{self.folder}: holds layers {list(self.key.layers)}, not layer {layer}; build one with it")
        return self.key.layers.index(layer)


def _check_key(folder: Path, recorded: dict, key: StateKey) -> None:
    wanted = key.to_dict()
    diffs = [f"{k}: cache {recorded.get(k)!r}, asked {v!r}" for k, v in wanted.items() if recorded.get(k) != v]
    if diffs:
        raise KitError(f"{folder}: a state cache built for another model, prompt or layers ({'; '.join(diffs)}); "
                       "use another folder, or the settings it was built with")


def load_states(folder: str | os.PathLike, key: StateKey | None = None) -> StateCache:
    """The cache in ``folder``; with ``key``, refused (KitError naming both) unless it matches."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != "states":
        raise KitError(f"{folder}: not a state cache (no manifest.json of kind 'states')")
    recorded = manifest.get("key") or {}
    if key is not None:
        _check_key(folder, recorded, key)
    stored = StateKey(**{**recorded, "layers": tuple(recorded.get("layers", ()))})
    pairs = [(str(r["qid"]), str(r["docid"])) for r in iter_jsonl(folder / PAIRS_LOG)]
    chunks = sorted((folder / CHUNKS).glob("*.npy"))
    arrays = [np.load(c) for c in chunks]
    states = np.concatenate(arrays) if arrays else np.zeros((0, len(stored.layers), 0), dtype=np.float16)
    if len(states) < len(pairs):  # a chunk logged but its file lost: never trust a short cache
        raise KitError(f"{folder}: {len(pairs)} pairs logged but {len(states)} states stored; rebuild the cache")
    return StateCache(folder, stored, pairs, states[: len(pairs)])


# --- building -------------------------------------------------------------------------------------


def _pairs_of(bench: Benchmark) -> list[tuple[str, str, str, str]]:
    """(qid, docid, query text, passage text) for every candidate, in benchmark order, once each."""
    seen, out = set(), []
    for r in bench.rankings:
        for c in r.candidates:
            if (r.query.qid, c.docid) not in seen:
                seen.add((r.query.qid, c.docid))
                out.append((r.query.qid, c.docid, r.query.text, c.text))
    return out


def _decoder_layers(model: Any) -> Any:
    inner = getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise KitError(f"{type(model).__name__}: no decoder layers found (model.model.layers); a Llama- or "
                       "Qwen-style causal LM is needed")
    return inner


class _Extractor:
    """The model cut after its deepest needed layer, with the outputs of the needed layers captured."""

    def __init__(self, key: StateKey, device: str = "cpu") -> None:
        import torch

        from rearank_kit.rank.policy import load_hf_model

        self.torch = torch
        self.model, self.tokenizer = load_hf_model(key.model, device=device)
        inner = _decoder_layers(self.model)
        total = len(inner.layers)
        if key.layers[-1] > total:
            raise KitError(f"{key.model} has {total} layers; layer {key.layers[-1]} was asked for")
        # Nothing above the deepest layer runs. One more layer is kept because transformers hands back
        # the last layer kept through the final norm: hidden_states[L] then equals the whole model's.
        inner.layers = inner.layers[: min(key.layers[-1] + 1, total)]
        self.layers, self.device = key.layers, device

    def __call__(self, texts: list[str]) -> np.ndarray:
        torch = self.torch
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False, padding_side="right")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.no_grad():
            out = _decoder_layers(self.model)(**enc, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states  # the embeddings, then the output of each decoder layer kept
        last = enc["attention_mask"].sum(1) - 1  # right padding: the last real token of each row
        rows = torch.arange(len(texts), device=last.device)
        return torch.stack([hidden[layer][rows, last] for layer in self.layers], dim=1).float().cpu().numpy()


class PairStates:
    """States computed in memory, with no cache: ``PairStates(key)(query, passages)`` ->
    ``[len(passages), layers, hidden]`` float32 (the ``Reranker`` API's scored path)."""

    def __init__(self, key: StateKey, prompt: PairPrompt, device: str = "cpu", batch_size: int = 16) -> None:
        self.extract, self.prompt, self.batch_size = _Extractor(key, device), prompt, batch_size

    def __call__(self, query: str, passages: Sequence[str]) -> np.ndarray:
        texts = [self.prompt.render(self.extract.tokenizer, query, p) for p in passages]
        parts = [self.extract(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.extract.layers), 0), dtype=np.float32)


def build_states(
    bench: Benchmark,
    folder: str | os.PathLike,
    model: str = "smollm2-135m",
    prompt: str | PairPrompt = "relevance",
    layers: Sequence[int] = (15,),
    *,
    batch_size: int = 16,  # 16 pairs a pass: 0.84x the time of one by one on 2 cores, side by side (BENCHMARKS.md)
    device: str = "cpu",
    progress: bool = True,
) -> StateCache:
    """The states of every (query, candidate) pair of ``bench`` in the cache ``folder``: the pairs
    already there are kept, the others computed (resumable, chunk by chunk). Returns the cache."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    the_prompt = load_pair_prompt(prompt)
    key = state_key(model, the_prompt, layers)
    if folder.exists() and not folder.is_dir():
        raise KitError(f"{folder}: exists and is a file; choose a folder for the state cache")
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is not None:
        if manifest.get("kind") != "states":
            raise KitError(f"{folder}: holds a {manifest.get('kind')!r} output, not a state cache; use another folder")
        recorded = manifest.get("key") or {}
        if set(key.layers) < set(recorded.get("layers") or ()):  # a cache of more layers serves fewer
            key = StateKey(**{**key.to_dict(), "layers": tuple(recorded["layers"])})
        _check_key(folder, recorded, key)
    elif folder.is_dir() and any(folder.iterdir()):
        raise KitError(f"{folder}: not empty and not a state cache; the kit writes caches only into empty folders")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CHUNKS).mkdir(exist_ok=True)
    done = {(str(r["qid"]), str(r["docid"])) for r in iter_jsonl(folder / PAIRS_LOG)}
    _drop_unlogged_chunks(folder, len(done))
    todo = [p for p in _pairs_of(bench) if (p[0], p[1]) not in done]
    write_manifest(folder, "states", key=key.to_dict(), model=key.model, template=key.prompt,
                   template_hash=key.prompt_hash, status="running", pairs=len(done))  # fmt: skip
    if todo:
        extract = _Extractor(key, device)
        texts = [the_prompt.render(extract.tokenizer, q, t) for _, _, q, t in todo]
        lengths = [len(extract.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        bar = tqdm(total=len(todo), desc=f"states of {bench.name} (layers {', '.join(map(str, key.layers))})",
                   unit="pair", disable=not progress, dynamic_ncols=True)  # fmt: skip
        started, chunk_no = time.perf_counter(), len(list((folder / CHUNKS).glob("*.npy")))
        try:
            for at in range(0, len(todo), CHUNK_PAIRS):
                part = list(range(at, min(at + CHUNK_PAIRS, len(todo))))
                # within a chunk, similar lengths share a batch (less padding); rows keep chunk order
                by_length = sorted(part, key=lambda i: lengths[i])
                got: dict[int, np.ndarray] = {}
                for b in range(0, len(by_length), batch_size):
                    batch = by_length[b : b + batch_size]
                    for i, row in zip(batch, extract([texts[i] for i in batch]), strict=True):
                        got[i] = row
                    bar.update(len(batch))
                out = np.stack([got[i] for i in part]).astype(np.float16)
                _save_chunk(folder / CHUNKS / f"{chunk_no:05d}.npy", out)
                append_jsonl(folder / PAIRS_LOG, *[{"qid": todo[i][0], "docid": todo[i][1]} for i in part])
                chunk_no += 1
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        tokens = sum(lengths)
        timing = {"pairs": len(todo), "seconds": round(seconds, 1), "pairs_per_second": round(len(todo) / seconds, 2),
                  "prompt_tokens": tokens, "mean_tokens": round(tokens / len(todo), 1)}
    else:
        timing = {"pairs": 0}
    cache = load_states(folder, key)
    write_manifest(folder, "states", key=key.to_dict(), model=key.model, template=key.prompt,
                   template_hash=key.prompt_hash, status="done", pairs=len(cache), last_build=timing)  # fmt: skip
    return cache


def _save_chunk(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _drop_unlogged_chunks(folder: Path, logged: int) -> None:
    """A chunk written but not yet logged (interrupted between the two) is redone: remove it."""
    total = 0
    for chunk in sorted((folder / CHUNKS).glob("*.npy")):
        if total >= logged:
            chunk.unlink()
            continue
        total += len(np.load(chunk, mmap_mode="r"))
    for tmp in (folder / CHUNKS).glob("*.tmp"):
        tmp.unlink()


__all__ = ["StateKey", "StateCache", "PairStates", "build_states", "load_states", "state_key"]
