"""Sliding windows, pipelined and lock-step windows across queries, traces and resume.

A scripted backend (it ranks by a score hidden in each passage's text) checks the bookkeeping
only: which windows are asked, in what order, how results are written back. Everything about
real generation is checked with the bundled model (the ``slow`` tests).
"""

import json
import re

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import iter_jsonl
from rearank_kit.core.records import Benchmark, Candidate, Query, Ranking
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank import settings as settings_module
from rearank_kit.rank.backends import Generation, Pipeline
from rearank_kit.rank.run import OUTPUT_FILES, rerank_benchmark
from rearank_kit.rank.settings import RerankConfig, config_for_backend, default_batch_size, default_mode
from rearank_kit.rank.windows import rerank, rerank_one, window_positions

# --- window arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "window", "step", "expected"),
    [
        (100, 20, 10, [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40), (10, 30), (0, 20)]),
        (20, 20, 10, [(0, 20)]),
        (7, 20, 10, [(0, 7)]),  # fewer candidates than the window: one window over all of them
        (1, 20, 10, [(0, 1)]),
        (0, 20, 10, []),
        (21, 20, 10, [(1, 21), (0, 11)]),
        (25, 20, 10, [(5, 25), (0, 15)]),  # not a multiple of the step: the top still gets a window
        (95, 20, 10, [(75, 95), (65, 85), (55, 75), (45, 65), (35, 55), (25, 45), (15, 35), (5, 25), (0, 15)]),
        (40, 20, 20, [(20, 40), (0, 20)]),  # step == window: no overlap
        (10, 4, 3, [(6, 10), (3, 7), (0, 4)]),
        (5, 2, 1, [(3, 5), (2, 4), (1, 3), (0, 2)]),
    ],
)
def test_window_positions(k, window, step, expected):
    assert window_positions(k, window, step) == expected


def test_window_positions_cover_every_position_and_end_at_top():
    for k in range(1, 60):
        for window, step in [(20, 10), (5, 2), (7, 7), (3, 1)]:
            positions = window_positions(k, window, step)
            assert positions[-1][0] == 0
            assert set().union(*(range(s, e) for s, e in positions)) == set(range(k))
            assert all(0 < e - s <= window for s, e in positions)


def test_window_positions_rejects_nonsense():
    with pytest.raises(ValueError):
        window_positions(10, 0, 1)
    with pytest.raises(ValueError):
        window_positions(10, 5, 0)


def test_config_defaults_follow_the_template():
    assert RerankConfig(template="rearank").resolved().max_new_tokens == 2048
    assert RerankConfig(template="compact").resolved().max_new_tokens == 128
    assert RerankConfig(template="rankgpt", max_new_tokens=64).resolved().max_new_tokens == 64
    assert RerankConfig(template="compact").resolved().mode is None  # the backend's default, filled in later
    for bad in [dict(window=1), dict(step=0), dict(step=21), dict(top_k=0), dict(mode="parallel"), dict(group_size=0)]:
        with pytest.raises(KitError):
            RerankConfig(template="compact", **bad).resolved()


# --- a scripted backend for the bookkeeping -----------------------------------------------------


class ScoreBackend:
    """Ranks the passages of a compact-template prompt by the ``score=N`` in their text."""

    name = "scripted"
    model_id = "scripted-by-score"

    def __init__(self, fail_after=None):
        self.calls = []  # number of conversations per generate() call
        self.fail_after = fail_after

    def generate(self, conversations, config, prefill=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during this call
        self.calls.append(len(conversations))
        outs = []
        for conv in conversations:
            scores = [int(s) for s in re.findall(r"^\[\d+\] \S+ score=(\d+)", conv[-1]["content"], re.M)]
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            answer = " > ".join(f"[{i + 1}]" for i in order)
            outs.append(Generation((prefill or "") + answer[1:] + "</answer>", 100, len(order) * 4, "stop"))
        return outs


def make_ranking(qid, scores):
    """Candidates in first-stage order; ``score=`` is the hidden relevance the backend sorts by."""
    cands = [Candidate(f"{qid}-d{i}", f"p{i} score={s}", rank=i + 1) for i, s in enumerate(scores)]
    return Ranking(Query(qid, f"query {qid}"), cands)


CONFIG = RerankConfig(top_k=30, window=10, step=5, template="compact", max_new_tokens=16)


def with_(**changes):
    """CONFIG with some fields changed."""
    return RerankConfig(**{**CONFIG.to_dict(), "stop": None, **changes})


def test_best_passage_bubbles_from_the_bottom_to_the_top():
    scores = [0] * 29 + [99]  # the only relevant passage is last of the top 30
    [result] = rerank([make_ranking("q", scores)], ScoreBackend(), CONFIG, progress=False)
    assert result.docids[0] == "q-d29"
    assert sorted(result.docids) == sorted(f"q-d{i}" for i in range(30))


def test_batched_calls_one_per_window_position_and_short_queries():
    rankings = [
        make_ranking("long", list(range(35))),  # 35 candidates: 30 reranked, 5 kept below in order
        make_ranking("five", [1, 5, 3, 2, 4]),
        make_ranking("one", [7]),
        make_ranking("none", []),
    ]
    backend = ScoreBackend()
    results = rerank(rankings, backend, with_(mode="batched"), progress=False)
    # long: 5 windows; five: 1 window, asked together with long's first window; one/none: no call.
    assert backend.calls == [2, 1, 1, 1, 1]
    assert [r.query.qid for r in results] == ["long", "five", "one", "none"]
    assert results[0].docids[:3] == ["long-d29", "long-d28", "long-d27"]  # top of the reranked 30
    assert results[0].docids[30:] == [f"long-d{i}" for i in range(30, 35)]  # tail untouched
    assert results[1].docids == ["five-d1", "five-d4", "five-d2", "five-d3", "five-d0"]
    assert results[2].docids == ["one-d0"] and results[3].candidates == []
    seq = ScoreBackend()
    sequential = rerank(rankings, seq, with_(mode="sequential"), progress=False)
    assert seq.calls == [1] * 6
    assert [r.docids for r in sequential] == [r.docids for r in results]
    piped = ScoreBackend()
    pipelined = rerank(rankings, piped, with_(mode="pipelined"), progress=False)
    assert piped.calls == [2, 1, 1, 1, 1]  # micro-batches of up to 8 over the windows that are ready
    assert [r.docids for r in pipelined] == [r.docids for r in results]


def test_traces_and_logs(tmp_path):
    rankings = [make_ranking("a", list(range(12))), make_ranking("b", [3, 1, 2])]
    rerank_benchmark(rankings, ScoreBackend(), CONFIG, tmp_path, progress=False)
    traces = list(iter_jsonl(tmp_path / "traces.jsonl"))
    assert [(t["qid"], t["window"]) for t in traces] == [("a", [2, 12]), ("b", [0, 3]), ("a", [0, 7])]
    required = {"qid", "window", "docids", "output", "order", "diagnostics", "prompt_tokens", "output_tokens",
                "seconds", "model", "template", "template_hash"}  # fmt: skip
    assert all(required <= set(t) for t in traces)
    assert traces[1]["docids"] == ["b-d0", "b-d1", "b-d2"] and traces[1]["order"] == [0, 2, 1]
    assert traces[0]["model"] == "scripted-by-score" and traces[0]["template"] == "compact"
    logged = [r["query"]["qid"] for r in iter_jsonl(tmp_path / "rankings.jsonl")]
    assert logged == ["b", "a"]  # pipelined: b's only window is done first, and b is logged at once
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["kind"] == "rerank" and manifest["template_hash"] == traces[0]["template_hash"]
    assert manifest["config"]["window"] == 10 and manifest["config"]["max_new_tokens"] == 16
    assert manifest["config"]["mode"] == "pipelined"  # the mode the run used, not None
    # each record's share of the time it waited; the shares of one wait add up to the wait
    assert traces[0]["call_size"] == 2 and traces[0]["seconds"] == pytest.approx(traces[0]["call_seconds"] / 2)
    lockstep = tmp_path / "lockstep"
    rerank_benchmark(rankings, ScoreBackend(), with_(mode="batched"), lockstep, progress=False)
    # lock-step too logs each query the moment its last window is done: b (one window) before a
    assert [r["query"]["qid"] for r in iter_jsonl(lockstep / "rankings.jsonl")] == ["b", "a"]
    assert [(t["qid"], t["window"]) for t in iter_jsonl(lockstep / "traces.jsonl")] == [(t["qid"], t["window"]) for t in traces]


def test_interrupt_then_resume_gives_the_same_result(tmp_path):
    rankings = [make_ranking(f"q{i}", [(7 * i + 3 * j) % 11 for j in range(25)]) for i in range(4)]
    config = RerankConfig(**{**CONFIG.to_dict(), "stop": None, "group_size": 1})
    expected = rerank(rankings, ScoreBackend(), config, progress=False)
    with pytest.raises(KeyboardInterrupt):  # 4 windows per query: stops inside the third query
        rerank_benchmark(rankings, ScoreBackend(fail_after=9), config, tmp_path, progress=False)
    assert len(list(iter_jsonl(tmp_path / "rankings.jsonl"))) == 2
    backend = ScoreBackend()
    resumed = rerank_benchmark(rankings, backend, config, tmp_path, progress=False).rankings
    assert len(backend.calls) == 8  # only the two unfinished queries
    assert [r.docids for r in resumed] == [r.docids for r in expected]
    traces = list(iter_jsonl(tmp_path / "traces.jsonl"))
    assert len(traces) == 16 and len({(t["qid"], tuple(t["window"])) for t in traces}) == 16


def test_resume_refuses_a_different_setup_but_allows_other_batching(tmp_path):
    rankings = [make_ranking("a", list(range(12)))]
    rerank_benchmark(rankings, ScoreBackend(), CONFIG, tmp_path, progress=False)
    for change in [dict(window=8), dict(max_new_tokens=32), dict(template="rankgpt"), dict(seed=1)]:
        with pytest.raises(KitError, match="made differently"):
            rerank_benchmark(rankings, ScoreBackend(), RerankConfig(**{**CONFIG.to_dict(), "stop": None, **change}), tmp_path,
                   progress=False)  # fmt: skip
    other = ScoreBackend()
    other.model_id = "another-model"
    with pytest.raises(KitError, match="model"):
        rerank_benchmark(rankings, other, CONFIG, tmp_path, progress=False)
    backend = ScoreBackend()
    same = RerankConfig(**{**CONFIG.to_dict(), "stop": None, "mode": "sequential", "batch_size": 2})
    rerank_benchmark(rankings, backend, same, tmp_path, progress=False)
    assert backend.calls == []  # everything was finished already


def test_resume_survives_a_torn_log_line(tmp_path):
    rankings = [make_ranking("a", list(range(12))), make_ranking("b", list(range(12)))]
    config = RerankConfig(**{**CONFIG.to_dict(), "stop": None, "group_size": 1})
    expected = rerank_benchmark(rankings, ScoreBackend(), config, tmp_path, progress=False).rankings
    log = tmp_path / "rankings.jsonl"
    first, second = log.read_text().splitlines(keepends=True)
    log.write_text(first + second[: len(second) // 2])  # the interrupt cut the last write
    backend = ScoreBackend()
    again = rerank_benchmark(rankings, backend, config, tmp_path, progress=False).rankings
    assert len(backend.calls) == 2 and [r.docids for r in again] == [r.docids for r in expected]
    assert [r["query"]["qid"] for r in iter_jsonl(log)] == ["a", "b"]


# --- pipelined windows -------------------------------------------------------------------------


class OutOfOrderBackend(ScoreBackend):
    """A backend with its own pipeline that finishes one request per ``wait``, the most recently
    submitted first: the opposite of lock-step. ``events`` logs (query index, requests already in
    flight) at each submission; ``cancelled`` what ``close`` found still in flight."""

    def __init__(self, fail_after=None):
        super().__init__(fail_after)
        self.events, self.cancelled = [], None

    def pipeline(self, config, prefill):
        backend = self

        class Stack(Pipeline):
            def __init__(self):
                super().__init__(config, prefill)
                self.stack = []

            def _submit(self, key, conversation, index):
                backend.events.append((key, len(self.stack)))
                self.stack.append((key, conversation))

            def wait(self):
                if not self.stack:
                    return []
                key, conversation = self.stack.pop()
                return [(key, backend.generate([conversation], config, prefill)[0])]

            @property
            def in_flight(self):
                return len(self.stack)

            def close(self):
                backend.cancelled = len(self.stack)
                self.stack = []

        return Stack()


def four_queries():
    return [make_ranking(f"q{i}", [(7 * i + 3 * j) % 11 for j in range(25)]) for i in range(4)]  # 4 windows each


def test_pipelined_windows_do_not_wait_for_other_queries():
    rankings = four_queries()
    expected = rerank(rankings, ScoreBackend(), with_(mode="sequential"), progress=False)
    backend = OutOfOrderBackend()
    got = rerank(rankings, backend, with_(mode="pipelined", group_size=3), progress=False)
    assert [r.docids for r in got] == [r.docids for r in expected]  # completion order changes nothing
    keys = [key for key, _ in backend.events]
    assert max(flying for _, flying in backend.events) == 2  # never more than 3 queries in flight
    # q2, submitted last, finishes first and goes on while q0 and q1 still wait for their first reply
    assert keys[:4] == [0, 1, 2, 2] and keys.count(2) == 4 and keys.index(3) < keys.index(1, 2)
    assert backend.cancelled == 0  # nothing left in flight at the end


def test_pipelined_interrupt_cancels_what_is_in_flight_and_resumes(tmp_path):
    rankings = four_queries()
    config = with_(group_size=2)  # mode None: pipelined, the default of every backend
    expected = rerank(rankings, ScoreBackend(), config, progress=False)
    interrupted = OutOfOrderBackend(fail_after=6)
    with pytest.raises(KeyboardInterrupt):
        rerank_benchmark(rankings, interrupted, config, tmp_path, progress=False)
    assert interrupted.cancelled == 1  # q0's window, submitted but never answered, was cancelled
    logged = [r["query"]["qid"] for r in iter_jsonl(tmp_path / "rankings.jsonl")]
    assert logged == ["q1"]  # q1 ran ahead of q0 and finished
    backend = ScoreBackend()
    resumed = rerank_benchmark(rankings, backend, config, tmp_path, progress=False).rankings
    assert sum(backend.calls) == 12 and [r.docids for r in resumed] == [r.docids for r in expected]
    traces = list(iter_jsonl(tmp_path / "traces.jsonl"))
    assert len(traces) == 16 and len({(t["qid"], tuple(t["window"])) for t in traces}) == 16


def test_default_mode_and_config_for_backend():
    backend = ScoreBackend()
    for name in ("hf", "vllm", "openai", "scripted"):
        backend.name = name
        assert default_mode(backend) == "pipelined"
    filled = config_for_backend(with_(mode=None, batch_size=None), backend)
    assert (filled.mode, filled.batch_size) == ("pipelined", 8)
    assert config_for_backend(with_(mode="batched"), backend).mode == "batched"  # asked for: kept


# --- the run folder: rerank_benchmark ----------------------------------------------------------


def toy_benchmark():
    """Two queries with judgments: the relevant passage is the one with the highest score=."""
    rankings = [make_ranking("a", [1, 0, 5, 2, 0, 0]), make_ranking("b", [0, 3, 1])]
    return Benchmark("toy", None, rankings, {"a": {"a-d2": 2, "a-d3": 1}, "b": {"b-d1": 1}})


def test_rerank_benchmark_owns_the_whole_folder(tmp_path):
    out = tmp_path / "run"
    run = rerank_benchmark(toy_benchmark(), ScoreBackend(), CONFIG, out, measures="nDCG@10", progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert [r.docids[0] for r in run.rankings] == ["a-d2", "b-d1"]
    assert (out / "run.trec").read_text().splitlines()[0] == "a Q0 a-d2 1 6 rearank-kit-compact"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {k: v for k, v in run.summary.items()}  # what was written is what came back
    assert metrics["model_calls"] == 2 and metrics["complete_answers"] == 2 and metrics["judged_queries"] == 2
    assert metrics["missing_queries"] == "zero"  # which queries the means are over
    assert metrics["reranked"]["nDCG@10"] == pytest.approx(1.0)  # the scripted backend ranks perfectly
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "rerank" and manifest["status"] == "done"
    assert manifest["model"] == "scripted-by-score" and manifest["backend"] == "scripted"
    assert manifest["queries"] == ["a", "b"] and manifest["results"]["judged_queries"] == 2
    assert sorted(manifest["files"]) == sorted(OUTPUT_FILES) and "per_query" not in manifest["results"]


def test_rerank_benchmark_reads_the_template_once(tmp_path, monkeypatch):
    loads, resolves = [], []
    real_load, real_resolved = settings_module.load_template, RerankConfig.resolved

    def counting_load(name):
        loads.append(name)
        return real_load(name)

    def counting_resolved(self, template=None, window=None):
        resolves.append(template)
        return real_resolved(self, template, window)

    monkeypatch.setattr(settings_module, "load_template", counting_load)
    monkeypatch.setattr(RerankConfig, "resolved", counting_resolved)
    rerank_benchmark(toy_benchmark(), ScoreBackend(), CONFIG, tmp_path, progress=False)
    assert loads == ["compact"] and len(resolves) == 1 and resolves[0] is not None


def test_rerank_benchmark_writes_the_folder_rerank_keeps_in_memory(tmp_path):
    rankings = [make_ranking("a", list(range(12)))]
    result = rerank_benchmark(rankings, ScoreBackend(), CONFIG, tmp_path, progress=False, manifest_fields={"data": "mine"})
    assert result.rankings[0].docids[0] == "a-d11"
    assert [r.docids for r in rerank(rankings, ScoreBackend(), CONFIG, progress=False)] == [result.rankings[0].docids]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)
    assert json.loads((tmp_path / "manifest.json").read_text())["data"] == "mine"
    assert "no judgments" in json.loads((tmp_path / "metrics.json").read_text())["note"]


@pytest.mark.parametrize("where", ["out", "parent"])
def test_an_output_path_that_is_a_file_is_refused_first(tmp_path, where):
    (tmp_path / "taken").write_text("not a folder")
    out = tmp_path / "taken" if where == "out" else tmp_path / "taken" / "run"
    backend = ScoreBackend()
    with pytest.raises(KitError, match=f"{tmp_path / 'taken'}: exists and is a file"):
        rerank_benchmark("no-such-benchmark", backend, CONFIG, out, progress=False)  # not even the data is read
    assert backend.calls == [] and (tmp_path / "taken").read_text() == "not a folder"


def test_rerank_benchmark_overwrite_and_other_data(tmp_path):
    bench = toy_benchmark()
    rerank_benchmark(bench, ScoreBackend(), CONFIG, tmp_path, progress=False)
    backend = ScoreBackend()
    rerank_benchmark(bench, backend, CONFIG, tmp_path, progress=False)
    assert backend.calls == []  # resumed: everything was finished
    other = Benchmark("toy", None, [make_ranking("a", [1, 2, 3])], bench.qrels)  # other candidates for query a
    with pytest.raises(KitError, match="other candidates than the data now"):
        rerank_benchmark(other, ScoreBackend(), CONFIG, tmp_path, progress=False)
    backend = ScoreBackend()
    run = rerank_benchmark(other, backend, CONFIG, tmp_path, overwrite=True, progress=False)
    assert backend.calls == [1] and [r.query.qid for r in run.rankings] == ["a"]
    assert [t["qid"] for t in iter_jsonl(tmp_path / "traces.jsonl")] == ["a"]


def test_a_benchmark_folder_records_its_data(tmp_path, sample_dir):
    run = rerank_benchmark(sample_dir, ScoreBackend(), RerankConfig(**{**CONFIG.to_dict(), "stop": None, "top_k": 5}),
                           tmp_path / "run", queries=2, progress=False)  # fmt: skip
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["data"] == "sample" and len(manifest["data_fingerprint"]) == 16
    assert manifest["queries"] == [r.query.qid for r in run.rankings] and len(run.rankings) == 2
    with pytest.raises(KitError, match="queries must be positive"):
        rerank_benchmark(sample_dir, ScoreBackend(), CONFIG, tmp_path / "x", queries=0, progress=False)


class FakeDevice:
    def __init__(self, kind):
        self.type = kind


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [("hf", "cpu", 1), ("hf", "cuda", 8), ("vllm", None, 8), ("openai", None, 8), ("scripted", None, 8)],
)
def test_default_batch_size(name, device, expected):
    backend = ScoreBackend()
    backend.name = name
    if device:
        backend.device = FakeDevice(device)
    assert default_batch_size(backend) == expected


def test_an_open_batch_size_is_the_backends_default(tmp_path):
    config = RerankConfig(**{**CONFIG.to_dict(), "stop": None, "batch_size": None})
    rerank_benchmark(toy_benchmark(), ScoreBackend(), config, tmp_path, progress=False)
    assert json.loads((tmp_path / "manifest.json").read_text())["config"]["batch_size"] == 8


# --- the bundled model --------------------------------------------------------------------------


def small_benchmark(n):
    """A few real queries: dl19 when ../shared/data is there, else the kit's own sample."""
    for name in ("dl19", "sample"):
        try:
            return load_benchmark(name, top_k=10).head(n)
        except KitError:
            continue
    pytest.skip("neither dl19 (../shared/data or $REARANK_KIT_DATA) nor data/sample is available")


@pytest.fixture(scope="module")
def bundled():
    from rearank_kit.rank.backends import load_backend

    with load_backend("hf", model="smollm2-135m") as backend:
        yield backend


# 10 candidates in windows of 5, step 3: three overlapping windows per query, short replies.
REAL = RerankConfig(top_k=10, window=5, step=3, template="compact", max_new_tokens=32, batch_size=4)


@pytest.mark.slow
def test_pipelined_and_batched_equal_sequential_with_the_bundled_model(bundled, tmp_path):
    """Greedy: the three modes give the same replies and rankings. Micro-batches of 2 over three
    queries: pipelined, a query whose window is done joins the next micro-batch."""
    bench = small_benchmark(3)
    runs = {mode: rerank_benchmark(bench, bundled, RerankConfig(**{**REAL.to_dict(), "stop": None, "mode": mode,
                                                              "batch_size": 2, "max_new_tokens": 16}),
                                   tmp_path / mode, progress=False).rankings
            for mode in ("sequential", "batched", "pipelined")}  # fmt: skip
    traces = {mode: sorted((t["qid"], t["window"], t["output"]) for t in iter_jsonl(tmp_path / mode / "traces.jsonl"))
              for mode in runs}  # fmt: skip
    for mode in ("batched", "pipelined"):
        assert [r.docids for r in runs[mode]] == [r.docids for r in runs["sequential"]], mode
        assert traces[mode] == traces["sequential"], mode
    assert len(traces["sequential"]) == 3 * len(bench.rankings)
    assert all(out.startswith("<answer>[") for _, _, out in traces["pipelined"])  # the compact prefill is in the text
    sizes = [t["call_size"] for t in iter_jsonl(tmp_path / "pipelined" / "traces.jsonl")]
    assert sorted(sizes) == [1] + [2] * 8  # 9 windows: four full micro-batches, then q2's last window alone


@pytest.mark.extended  # about 30 s; the scripted-backend resume tests above and the CLI's resume test cover it in make test
def test_resume_with_the_bundled_model_reproduces_the_run(bundled, tmp_path):
    from rearank_kit.core.records import format_run

    bench = small_benchmark(2)
    full = rerank_benchmark(bench, bundled, REAL, tmp_path, progress=False).rankings
    log = tmp_path / "rankings.jsonl"
    log.write_text(log.read_text().splitlines(keepends=True)[0])  # as if stopped after query 1
    resumed = rerank_benchmark(bench, bundled, REAL, tmp_path, progress=False).rankings
    assert format_run(resumed) == format_run(full)
    traces = list(iter_jsonl(tmp_path / "traces.jsonl"))
    assert len(traces) == 6  # the redone query's calls are not counted twice


@pytest.mark.slow
def test_rerank_one_returns_output_and_permutation(bundled):
    result = rerank_one("what is a cat", ["Cars have four wheels.", "A cat is a small domesticated feline."],
                        bundled, template="compact", max_new_tokens=16)  # fmt: skip
    assert result.output.startswith("<answer>[")
    assert sorted(result.order) == [0, 1]
    assert sorted(result.passages) == sorted(["Cars have four wheels.", "A cat is a small domesticated feline."])
    assert result.messages[-1]["role"] == "user" and result.generation.output_tokens <= 16
