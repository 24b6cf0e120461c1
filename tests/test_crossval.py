"""The learning run end to end on the bundled sample: states of the real model, cross-validation by
query with the choice made on validation queries only, the final model, and that model used as any
other through `rearank-kit rerank` and the Reranker API."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.data.folds import draw_folds, load_folds, write_folds
from rearank_kit.evaluation import crossval, rungs
from rearank_kit.evaluation.learning_run import LearningSetup, learning_run
from rearank_kit.rank.states import build_states

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def learned(sample_dir, tmp_path_factory, request):
    """States of the sample's top 10 at layers 4 and 8 (about 10 s), five folds, a two-setting grid."""
    root = tmp_path_factory.mktemp("learning")
    bench = load_benchmark(sample_dir, top_k=10)
    cache = build_states(bench, root / "states", layers=(4, 8), batch_size=16, progress=False)
    folds = load_folds(write_folds(draw_folds([r.query.qid for r in bench.rankings], 5, seed=0), root / "folds.json"))
    monkey = pytest.MonkeyPatch()
    request.addfinalizer(monkey.undo)
    monkey.setattr(rungs, "GRPO_GRID", [replace(rungs.GRPO_BASE, steps=40, learning_rate=lr) for lr in (0.003, 0.03)])
    seen = []
    real_fold = crossval.run_fold

    def spying(method, folds_, fold, lists, make_start, progress=None):
        result = real_fold(method, folds_, fold, lists, make_start, progress)
        seen.append(result)
        return result

    monkey.setattr(crossval, "run_fold", spying)
    setup = LearningSetup(layer_choices=((4,), (4, 8)), window=5, top_k=10, samples_per_query=8)
    metrics = learning_run(bench, folds, cache, setup, root / "run", log=None)
    return bench, folds, cache, root, metrics, seen


def test_each_fold_chooses_on_validation_and_tests_on_unseen_queries(learned):
    bench, folds, _, root, metrics, seen = learned
    assert len(seen) == 5
    for result in seen:
        assert set(result.test_qids) == set(folds.queries(result.fold, "test"))
        assert set(result.validation_qids) == set(folds.queries(result.fold, "validation"))
        assert not set(result.test_qids) & set(result.train_qids + result.validation_qids)
        assert len(result.validation) == 4  # 2 layer choices x 2 learning rates, each scored on validation
        best = max(row["validation_ndcg"] for row in result.validation)
        assert result.validation[result.chosen]["validation_ndcg"] == best
        manifest = json.loads((root / "run" / f"fold-{result.fold}" / "manifest.json").read_text())
        assert manifest["fold"] == result.fold and manifest["train_qids"] == result.train_qids
        assert manifest["template"] == "relevance" and "template_hash" in manifest and "git_commit" in manifest
    m = metrics["ndcg@10"]
    assert m["queries"] == len(bench.rankings) and m["up"] + m["down"] + m["equal"] == m["queries"]
    assert m["ci95"][0] <= m["delta"] <= m["ci95"][1] and m["baseline"] == pytest.approx(0.5382, abs=1e-3)
    sets = metrics["set_reward"]
    assert sets["sets"] > 0 and {"rank_reward", "ndcg10_gain"} <= set(sets) and "step_reward" in metrics["final"]
    assert sets["ndcg10_gain"]["sets_up"] + sets["ndcg10_gain"]["sets_down"] <= sets["sets"]


def test_the_held_out_run_is_every_query_once(learned):
    bench, _, _, root, metrics, seen = learned
    lines = [line.split() for line in (root / "run" / "cv-sample.trec").read_text().splitlines()]
    assert {x[0] for x in lines} == {r.query.qid for r in bench.rankings} and len(lines) == 10 * len(bench.rankings)
    # the run's nDCG@10 through the kit's evaluator (ir-measures) is the fast one the choice used
    from rearank_kit.core.metrics import evaluate
    from rearank_kit.core.records import read_run

    run = {q: {c.docid: c.score for c in cands} for q, cands in read_run(root / "run" / "cv-sample.trec").items()}
    official = evaluate(run, bench.qrels, ["nDCG@10"]).mean["nDCG@10"]
    assert official == pytest.approx(metrics["ndcg@10"]["system"], abs=1e-9)


def test_an_interrupted_cross_validation_keeps_its_folds_and_refuses_another_setup(learned, capsys):
    bench, folds, cache, root, metrics, _ = learned
    again = learning_run(bench, folds, cache, LearningSetup(layer_choices=((4,), (4, 8)), window=5, top_k=10,
                                                            samples_per_query=8),
                         root / "run", log=print)  # fmt: skip
    assert capsys.readouterr().out.count("finished earlier, kept") == 5
    assert again["ndcg@10"] == metrics["ndcg@10"]
    with pytest.raises(KitError, match="another --out"):
        learning_run(bench, folds, cache, LearningSetup(layer_choices=((4,),), window=5, top_k=10, samples_per_query=8),
                     root / "run", log=None)  # fmt: skip


def test_the_final_model_reranks_like_any_model(learned, run_cli, sample_dir, tmp_path):
    bench, _, _, root, _, _ = learned
    final = root / "run" / "final"
    proc = run_cli("rerank", "--model", final, "--data", sample_dir, "--top-k", "10", "--out", tmp_path / "r",
                   "--states", root / "states", "--no-progress", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["num_queries"] == len(bench.rankings) and "reranked" in summary
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["policy"] == "scored" and manifest["template"] == "relevance"
    for flags, word in [(["--window", "5"], "--window"), (["--template", "compact"], "--template"),
                        (["--backend", "vllm"], "--backend vllm"), (["--max-new-tokens", "9"], "--max-new-tokens")]:
        proc = run_cli("rerank", "--model", final, "--data", sample_dir, "--out", tmp_path / "refused", *flags)
        assert proc.returncode == 2 and word in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "refused").exists()

    from rearank_kit import Reranker

    with Reranker(str(final)) as reranker:
        result = reranker.rerank(bench.rankings[0].query.text, [c.text for c in bench.rankings[0].candidates])
    assert sorted(result.order) == list(range(10)) and len(result.traces[0]["scores"]) == 10
    assert np.all(np.diff(result.traces[0]["scores"]) <= 0)
