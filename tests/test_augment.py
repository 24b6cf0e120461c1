"""Training-set augmentation: determinism, filters, splits, scores, outputs and the CLI."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import load_template
from rearank_kit.core.records import Benchmark, Candidate, Query, Ranking
from rearank_kit.data.benchmarks import save_benchmark
from rearank_kit.train.augment import AugmentConfig, augment, load_sets, run_augment, write_augmented

REPO = Path(__file__).resolve().parents[1]


def tiny_benchmark(n_queries: int = 8, n_cands: int = 15, seed: int = 7) -> Benchmark:
    """Made-up queries: half of each query's candidates judged 0-3, plus one judged passage that
    was never retrieved (so the ideal DCG must come from all judgments, not from the candidates),
    one query without judgments and one with only 3 candidates."""
    rng = random.Random(seed)
    rankings, qrels = [], {}
    for q in range(n_queries):
        qid = f"q{q}"
        cands = [Candidate(f"{qid}-d{i}", f"text {i} of topic {q}", rank=i + 1, score=float(n_cands - i))
                 for i in range(n_cands)]
        rankings.append(Ranking(Query(qid, f"question about topic {q}"), cands))
        qrels[qid] = {c.docid: rng.choice([0, 0, 1, 2, 3]) for c in cands[::2]}
        qrels[qid][f"{qid}-unretrieved"] = 3
    rankings.append(Ranking(Query("unjudged", "nobody judged this"),
                            [Candidate(f"u-d{i}", "some text", rank=i + 1) for i in range(n_cands)]))
    rankings.append(Ranking(Query("short", "three candidates only"),
                            [Candidate(f"s-d{i}", "short text", rank=i + 1) for i in range(3)]))
    qrels["short"] = {"s-d0": 2}
    return Benchmark("tiny", None, rankings, qrels)


CONFIG = dict(samples_per_query=12, window=5, template="compact", test_fraction=0.25)


def hand_ndcg(grades, judged, k=10):
    """nDCG@k from scratch: linear gain, log2 discount, ideal from all judged grades."""
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(grades[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(judged, reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def test_same_seed_same_sets_different_seed_different():
    bench = tiny_benchmark()
    a = augment(bench, AugmentConfig(seed=3, **CONFIG)).rows
    b = augment(bench, AugmentConfig(seed=3, **CONFIG)).rows
    c = augment(bench, AugmentConfig(seed=4, **CONFIG)).rows
    assert a == b
    assert [r["docids"] for r in a] != [r["docids"] for r in c]


def test_a_querys_sets_do_not_depend_on_the_other_queries():
    bench = tiny_benchmark()
    full = augment(bench, AugmentConfig(**CONFIG)).rows
    alone = augment(Benchmark("one", None, bench.rankings[2:3], bench.qrels), AugmentConfig(**{**CONFIG, "test_fraction": 0})).rows
    assert [r["docids"] for r in alone] == [r["docids"] for r in full if r["qid"] == "q2"]


def test_scores_recomputed_independently_and_best_at_least_initial():
    bench = tiny_benchmark()
    rows = augment(bench, AugmentConfig(**CONFIG)).rows
    assert rows
    for row in rows:
        judged = bench.qrels[row["qid"]]
        assert row["grades"] == [judged.get(d, 0) for d in row["docids"]]
        assert sorted(row["ideal_grades"]) == sorted(judged.values())
        assert row["init_ndcg"] == pytest.approx(hand_ndcg(row["grades"], judged.values()), abs=1e-12)
        assert row["best_ndcg"] == pytest.approx(hand_ndcg(sorted(row["grades"], reverse=True), judged.values()), abs=1e-12)
        assert row["best_ndcg"] >= row["init_ndcg"]
        assert len(row["docids"]) == len(set(row["docids"])) == len(row["texts"]) == 5


def test_initial_order_is_bm25_order_unless_random():
    bench = tiny_benchmark()
    rank = {c.docid: c.rank for r in bench.rankings for c in r.candidates}
    for row in augment(bench, AugmentConfig(**CONFIG)).rows:
        assert [rank[d] for d in row["docids"]] == sorted(rank[d] for d in row["docids"])
    shuffled = augment(bench, AugmentConfig(order="random", **CONFIG)).rows
    assert any([rank[d] for d in r["docids"]] != sorted(rank[d] for d in r["docids"]) for r in shuffled)


@pytest.mark.parametrize("which", ["initial", "best"])
def test_filters_drop_and_count(which):
    bench = tiny_benchmark()
    result = augment(bench, AugmentConfig(filter=which, min_ndcg=0.3, **CONFIG))
    s = result.summary
    assert s["filter"] == which and s["min_ndcg"] == 0.3
    key = "init_ndcg" if which == "initial" else "best_ndcg"
    assert all(r[key] >= 0.3 and any(g > 0 for g in r["grades"]) for r in result.rows)
    assert s["sets_kept"] + sum(s["sets_dropped"].values()) == s["sets_drawn"] == 8 * 12
    assert s["sets_dropped"]["below_min_ndcg"] > 0 and s["sets_dropped"]["no_relevant"] > 0


def test_best_filter_keeps_a_superset_of_the_initial_filter():
    bench = tiny_benchmark()
    initial = {r["set_id"] for r in augment(bench, AugmentConfig(filter="initial", min_ndcg=0.3, **CONFIG)).rows}
    best = {r["set_id"] for r in augment(bench, AugmentConfig(filter="best", min_ndcg=0.3, **CONFIG)).rows}
    assert initial < best  # best >= initial for every set, so more pass


def test_split_by_query_and_skipped_queries_counted():
    result = augment(tiny_benchmark(), AugmentConfig(**CONFIG))
    train = {r["qid"] for r in result.rows if r["split"] == "train"}
    test = {r["qid"] for r in result.rows if r["split"] == "test"}
    assert train and test and not train & test
    assert test <= result.test_qids and len(result.test_qids) == 2  # round(0.25 * 8 usable queries)
    s = result.summary
    assert s["queries_skipped"] == {"no_judgments": 1, "too_few_candidates": 1}
    assert s["skipped_qids"] == {"no_judgments": ["unjudged"], "too_few_candidates": ["short"]}
    assert augment(tiny_benchmark(), AugmentConfig(**CONFIG)).test_qids == result.test_qids


def test_prompt_rendered_with_the_template():
    row = augment(tiny_benchmark(), AugmentConfig(**CONFIG)).rows[0]
    template = load_template("compact")
    assert row["prompt"] == template.messages(row["query"], row["texts"])
    assert (row["template"], row["template_hash"]) == ("compact", template.hash)


@pytest.mark.parametrize("bad", [dict(window=1), dict(samples_per_query=0), dict(filter="median"), dict(order="bm26"),
                                 dict(test_fraction=1.0), dict(min_ndcg=2.0), dict(seed=-1), dict(window=200)])
def test_bad_options_are_clear_errors(bad):
    with pytest.raises(KitError):
        augment(tiny_benchmark(), AugmentConfig(**{**CONFIG, **bad}))


def test_window_larger_than_every_query_writes_nothing(tmp_path):
    folder = save_benchmark(tiny_benchmark(), tmp_path / "bench")
    out = tmp_path / "out"
    with pytest.raises(KitError, match="fewer candidates than --window 30"):
        run_augment(folder, out, AugmentConfig(window=30, pool=100))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bench"]


def test_outputs_written_whole_and_read_back(tmp_path):
    bench = tiny_benchmark()
    result = augment(bench, AugmentConfig(**CONFIG))
    out = write_augmented(result, tmp_path / "aug")
    assert sorted(p.name for p in out.iterdir()) == ["dataset", "manifest.json", "sets.jsonl", "summary.json"]
    lines = [json.loads(line) for line in (out / "sets.jsonl").read_text().splitlines()]
    assert lines == result.rows
    sets = load_sets(out)
    assert set(sets) == {"train", "test"}
    assert sum(len(d) for d in sets.values()) == len(result.rows)
    assert sets["train"][0] == next(r for r in result.rows if r["split"] == "train")
    (out / "dataset").rename(tmp_path / "moved")  # only sets.jsonl left: load_sets still works
    assert {s: len(d) for s, d in load_sets(out).items()} == {s: len(d) for s, d in sets.items()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "augment" and manifest["template_hash"] == load_template("compact").hash


def test_refuses_non_empty_out_and_failed_write_leaves_nothing(tmp_path, monkeypatch):
    result = augment(tiny_benchmark(), AugmentConfig(**CONFIG))
    out = tmp_path / "aug"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(KitError, match="not an empty folder"):
        write_augmented(result, out)
    with pytest.raises(KitError, match="holds 'keep.txt', which rearank-kit did not write"):
        write_augmented(result, out, overwrite=True)  # --overwrite replaces only what the kit wrote
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    write_augmented(result, out)
    before = (out / "sets.jsonl").read_bytes()
    import rearank_kit.train.augment as aug

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(aug, "_publish", boom)
    with pytest.raises(OSError):
        write_augmented(result, out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug"]  # no temporary folder left behind
    assert (out / "sets.jsonl").read_bytes() == before  # the earlier output, whole
    monkeypatch.undo()
    write_augmented(result, out, overwrite=True)
    assert (out / "sets.jsonl").is_file() and sorted(p.name for p in out.iterdir()) == sorted(aug.OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug"]


# --- the command line ---------------------------------------------------------------------------


def shared_data() -> Path | None:
    for root in [*os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep), str(REPO.parent / "shared" / "data")]:
        if root and (Path(root) / "dl21" / "qrels.txt").is_file():
            return Path(root)
    return None


def cli(*args, data_root=None):
    env = dict(os.environ)
    if data_root:
        env["REARANK_KIT_DATA"] = str(data_root)
    return subprocess.run([sys.executable, "-m", "rearank_kit.cli", "augment", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def test_cli_on_dl21(tmp_path):
    root = shared_data()
    if root is None:
        pytest.skip("../shared/data/dl21 not found (set REARANK_KIT_DATA to the folder holding dl21)")
    out = tmp_path / "aug"
    proc = cli("--data", "dl21", "--samples-per-query", 10, "--seed", 0, "--out", out, data_root=root)
    assert proc.returncode == 0, proc.stderr
    assert "sets kept" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["queries"] == 53 and summary["sets_drawn"] == 530 and summary["seed"] == 0
    rows = [json.loads(line) for line in (out / "sets.jsonl").open()]
    assert len(rows) == summary["sets_kept"] and all(len(r["docids"]) == 20 for r in rows)
    required = {"qid", "query", "set_id", "docids", "texts", "grades", "ideal_grades", "init_ndcg", "best_ndcg",
                "split", "template", "template_hash", "prompt"}
    assert required <= set(rows[0])
    from rearank_kit.core.records import read_qrels

    qrels = read_qrels(root / "dl21" / "qrels.txt")
    for row in rows[::97]:
        judged = qrels[row["qid"]]
        assert row["init_ndcg"] == pytest.approx(hand_ndcg([judged.get(d, 0) for d in row["docids"]], judged.values()))
    assert {s: len(d) for s, d in load_sets(out).items()} == {s: c["sets"] for s, c in summary["splits"].items()}


def test_cli_on_sample_or_a_tiny_folder(tmp_path):
    data = REPO / "data" / "sample"
    if not all((data / f).is_file() for f in ("queries.tsv", "qrels.txt", "candidates.trec", "passages.jsonl")):
        data = save_benchmark(tiny_benchmark(), tmp_path / "tiny")
    out = tmp_path / "aug"
    proc = cli("--data", data, "--samples-per-query", 8, "--window", 5, "--template", "compact", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["sets_kept"] == sum(1 for _ in (out / "sets.jsonl").open())
    again = cli("--data", data, "--samples-per-query", 8, "--window", 5, "--template", "compact",
                "--out", tmp_path / "again")
    assert again.returncode == 0 and (tmp_path / "again" / "sets.jsonl").read_text() == (out / "sets.jsonl").read_text()
    refused = cli("--data", data, "--window", 5, "--out", out)
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr


def test_cli_bad_input_is_a_clear_error_and_writes_nothing(tmp_path):
    proc = cli("--data", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "unknown benchmark" in proc.stderr and "Traceback" not in proc.stderr
    folder = save_benchmark(tiny_benchmark(), tmp_path / "bench")
    proc = cli("--data", folder, "--window", 40, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "fewer candidates than --window 40" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]
