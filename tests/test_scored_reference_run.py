"""The committed learning run of the scored policy (data/runs/scored-grpo-dl21): its files agree with
each other, with the committed folds and, where ../shared/data is present, with the kit's own
evaluator on the real qrels; its final model loads and ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rearank_kit.core.records import read_run
from rearank_kit.rank.scored import load_scored_policy

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "data" / "runs" / "scored-grpo-dl21"


def _json(path: Path):
    return json.loads(path.read_text())


def test_the_folds_are_the_committed_ones_and_every_query_is_tested_once():
    folds = _json(RUN / "folds.json")["folds"]
    assert folds == _json(ROOT / "data" / "folds" / "dl21.json")["folds"]
    tested = []
    for k in range(5):
        manifest = _json(RUN / f"fold-{k}" / "manifest.json")
        assert manifest["fold"] == k and manifest["kind"] == "crossval-fold"
        assert {folds[q] for q in manifest["test_qids"]} == {k}
        assert {folds[q] for q in manifest["validation_qids"]} == {(k + 1) % 5}
        assert not set(manifest["train_qids"]) & set(manifest["test_qids"] + manifest["validation_qids"])
        assert manifest["chosen"]["validation_ndcg"] == max(r["validation_ndcg"] for r in _json(RUN / f"fold-{k}" / "result.json")["validation"])
        tested += manifest["test_qids"]
    assert sorted(tested) == sorted(folds)


def test_the_numbers_agree_with_the_runs(shared_data):
    from rearank_kit.core.metrics import evaluate
    from rearank_kit.core.records import read_qrels

    metrics = _json(RUN / "metrics.json")
    for name, key in (("dl21", "cv-dl21"), ("dl19", "dl19"), ("dl20", "dl20")):
        qrels = read_qrels(shared_data / name / "qrels.txt")
        run = {q: {c.docid: c.score for c in cands} for q, cands in read_run(RUN / f"{key}.trec").items()}
        assert all(len(docs) == 100 for docs in run.values())  # the whole top 100, reranked
        value = evaluate(run, qrels, ["nDCG@10"]).mean["nDCG@10"]
        assert value == pytest.approx(metrics["heldout"][key]["system"], abs=1e-9), name
    h = metrics["heldout"]
    assert h["all"]["queries"] == 150 == h["cv-dl21"]["queries"] + h["dl19"]["queries"] + h["dl20"]["queries"]
    assert h["dl19"]["baseline"] == pytest.approx(0.5058, abs=1e-4) and h["dl20"]["baseline"] == pytest.approx(0.4796, abs=1e-4)


def test_the_final_model_loads_its_curve_rises_and_it_ranks(sample_dir):
    policy = load_scored_policy(RUN / "final")
    assert policy.model == "smollm2-135m" and policy.prompt == "relevance" and len(policy.w) == 576
    steps = [json.loads(line) for line in (RUN / "final" / "metrics.jsonl").read_text().splitlines()]
    band = [json.loads(line) for line in (RUN / "final" / "no_learning_band.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [b["step"] for b in band] == list(range(1, len(steps) + 1))
    from rearank_kit.train.scored import rising_beyond_noise

    rise = rising_beyond_noise([s["reward"] for s in steps])
    assert rise == pytest.approx(_json(RUN / "metrics.json")["final"]["step_reward"]) and rise["rises"]
    rng = np.random.default_rng(0)
    states, prior = rng.normal(size=(6, 1, 576)), np.linspace(1, -1, 6)
    assert sorted(policy.order(states, prior)) == list(range(6))


def test_the_final_model_exports_small_and_the_export_is_a_model(tmp_path):
    from rearank_kit.rank.policy import resolve_policy
    from rearank_kit.train.export import export_run

    out = export_run(RUN / "final", tmp_path / "export")
    record = _json(out / "rearank_kit.json")
    assert record["family"] == "scored" and record["base_model"] == "smollm2-135m" and record["template"] == "relevance"
    assert sorted(p.name for p in out.iterdir()) == sorted(record["files"])
    assert sum(p.stat().st_size for p in out.iterdir()) < 100_000  # the head, not a language model
    assert resolve_policy(out).family == "scored"
    assert np.allclose(load_scored_policy(out).w, load_scored_policy(RUN / "final").w)


def test_a_policy_whose_prompt_file_changed_is_refused_by_export_and_the_api(tmp_path):
    import shutil

    from rearank_kit import Reranker
    from rearank_kit.core.errors import KitError
    from rearank_kit.train.export import export_run

    folder = tmp_path / "final"
    shutil.copytree(RUN / "final", folder)
    record = _json(folder / "scored_policy.json")
    (folder / "scored_policy.json").write_text(json.dumps({**record, "prompt_hash": "0" * 12}))
    with pytest.raises(KitError, match="scored_policy.json: trained on prompt relevance#0{12}, which now hashes to"):
        export_run(folder, tmp_path / "export")
    assert not (tmp_path / "export").exists()
    with pytest.raises(KitError, match="the prompt file changed since"):
        Reranker(folder)
