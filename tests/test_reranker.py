"""``Reranker``: the three-line API. A scripted backend checks the bookkeeping (windows, order,
the passages handed back, reasoning); the bundled model runs the README's and docs/API.md's
examples as written."""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path

import pytest

from rearank_kit import Reranker, RerankResult
from rearank_kit.core.errors import KitError
from rearank_kit.rank.backends import Generation
from rearank_kit.rank.policy import EXPORT_RECORD, TemplateMismatchWarning
from rearank_kit.rank.settings import RerankConfig
from rearank_kit.rank.windows import rerank, rerank_one

REPO = Path(__file__).resolve().parents[1]


class Scripted:
    """Ranks a window by the ``score=N`` in each passage; ``think`` is put before the answer.
    Its default model id is Rearank-7B's, so it is prompted with the reasoning template."""

    name = "scripted"

    def __init__(self, model_id="le723z/Rearank-7B", think=None, cut=False):
        self.model_id, self.think, self.cut = model_id, think, cut
        self.calls, self.closed = [], False

    def generate(self, conversations, config, prefill=None):
        self.calls.append(len(conversations))
        outs = []
        for conv in conversations:
            text = "\n".join(m["content"] for m in conv if m["role"] == "user")
            scores = [int(s) for s in re.findall(r"score=(\d+)", text)]
            answer = " > ".join(f"[{i + 1}]" for i in sorted(range(len(scores)), key=lambda i: -scores[i]))
            if self.cut:  # cut at the token limit inside <think>
                reply = f"<think>{self.think}"
            else:
                reply = (f"<think>{self.think}</think>" if self.think else "") + f"<answer>{answer}</answer>"
            outs.append(Generation((prefill or "") + reply.removeprefix(prefill or ""), 50, 20, "stop"))
        return outs

    def close(self):
        self.closed = True


def test_rerank_returns_the_given_passages_in_the_new_order():
    backend = Scripted(think="the second passage names cats")
    given = ["a score=1", {"id": "x", "text": "b score=9"}, "c score=5"]
    result = Reranker(backend=backend).rerank("cats", given)
    assert isinstance(result, RerankResult) and result.query == "cats"
    assert result.order == [1, 2, 0]
    assert result.passages == [given[1], given[2], given[0]] and result.passages[0] is given[1]
    assert result.reasoning == "the second passage names cats"
    assert result.output.endswith("<answer>[2] > [3] > [1]</answer>") and len(result.traces) == 1


def test_long_lists_slide_and_many_queries_share_calls():
    backend = Scripted()
    lists = [[f"p{i} score={i}" for i in range(9)], ["q score=1", "r score=2"], []]
    with Reranker(backend=backend, window=4, stride=2) as reranker:
        results = reranker.rerank_many(["one", "two", "three"], lists)
    # One pass bottom to top: the two best passages climbed from the bottom window to the top.
    assert results[0].order[:2] == [8, 7] and sorted(results[0].order) == list(range(9))
    assert [t["window"] for t in results[0].traces] == [[5, 9], [3, 7], [1, 5], [0, 3]]
    assert results[1].order == [1, 0] and results[2].order == [] and results[2].output == ""
    assert backend.calls == [2, 1, 1, 1]  # the first window position of both long lists in one call
    assert backend.closed is False  # a backend passed in is left to its owner


def test_reasoning_cut_at_the_token_limit_is_what_was_reasoned_so_far():
    result = Reranker(backend=Scripted(think="the first passage mentions", cut=True)).rerank("q", ["a score=1", "b score=2"])
    assert result.reasoning == "the first passage mentions" and result.order == [0, 1]  # unparsed: first-stage order


def test_bad_calls_are_clear_errors():
    reranker = Reranker(backend=Scripted())
    with pytest.raises(KitError, match="2 queries but 1 passage lists"):
        reranker.rerank_many(["a", "b"], [["x"]])
    with pytest.raises(KitError, match="passages must be a list of passages, not one str"):
        reranker.rerank("q", "one long string")
    with pytest.raises(KitError, match=r"query 0, passage 1: a passage must be a string"):
        reranker.rerank("q", ["fine", 42])
    with pytest.raises(KitError, match="backend arguments device cannot apply"):
        Reranker(backend=Scripted(), device="cpu")
    with pytest.raises(KitError, match="stride"):
        Reranker(backend=Scripted(), window=4, stride=5)
    reranker.close()
    with pytest.raises(KitError, match="closed"):
        reranker.rerank("q", ["x"])


def test_the_template_is_the_models_own_everywhere(tmp_path):
    # A preset: its own template; one it does not suit runs only when named, with a warning.
    assert Reranker(backend=Scripted("le723z/Rearank-7B")).template.name == "rearank"
    with pytest.warns(TemplateMismatchWarning, match="does not suit"):
        assert Reranker(backend=Scripted("rearank-7b"), template="compact").template.name == "compact"
    window = rerank_one("q", ["a score=1", "b score=2"], Scripted("le723z/Rearank-7B"))
    assert window.messages[0]["content"].startswith("You are DeepRerank")  # not "compact" any more
    with pytest.warns(TemplateMismatchWarning, match="does not suit"):
        rerank([], Scripted("rearank-7b"), RerankConfig(template="compact"))
    # An exported model: the template it was trained with; another one warns.
    export = tmp_path / "export"
    export.mkdir()
    (export / EXPORT_RECORD).write_text(json.dumps({"template": "compact", "lenient": True, "window": 5}))
    reranker = Reranker(backend=Scripted(str(export)))
    assert reranker.template.name == "compact" and reranker.config.window == 5 and reranker.config.step == 2
    with pytest.warns(TemplateMismatchWarning, match="trained with the 'compact' template"):
        Reranker(backend=Scripted(str(export)), template="rankgpt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Reranker(backend=Scripted(str(export)), template="compact")  # the same one: no warning


# --- the documented examples, on the bundled model ----------------------------------------------


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


@pytest.fixture
def one_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2-core machine is shared (tests/test_backends.py)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(one_thread):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    api = readme.index("## Rerank in three lines of Python")
    assert api < readme.index("rearank-kit "), "the Python API comes before the CLI in the README"
    code = python_blocks(REPO / "README.md")[0]
    assert code.count("\n") <= 6 and "Reranker(" in code
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the documented example itself
    result = namespace["result"]
    passages = ["Cars run on petrol.", "Cats are carnivores: they eat meat.", "Tea is a hot drink."]
    assert sorted(result.order) == [0, 1, 2] and result.passages == [passages[i] for i in result.order]
    assert result.output.startswith("<answer>[")  # the bundled model's compact prefill
    # Answer-only prompt: no <think> block, so no reasoning, and the field says so with "".
    assert isinstance(result.reasoning, str) and result.reasoning == "" and "<think>" not in result.output
    assert printed.getvalue().splitlines()[:2] == [str(result.order), result.passages[0]]


@pytest.mark.slow
def test_the_api_doc_examples_run_as_written(one_thread, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write under runs/ and read data/ as from the checkout
    (tmp_path / "data").symlink_to(REPO / "data")
    namespace: dict = {}
    for i, code in enumerate(python_blocks(REPO / "docs" / "API.md")):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"docs/API.md block {i + 1}", "exec"), namespace)  # noqa: S102
    assert [p["id"] for p in namespace["results"][0].passages] in (["a", "b"], ["b", "a"])
    assert [t["window"] for t in namespace["results"][1].traces] == [[3, 7], [1, 5], [0, 3]]
    assert (tmp_path / "runs" / "api-sample" / "run.trec").is_file()
    assert (tmp_path / "runs" / "sample.requests.jsonl").is_file()
    scored = namespace["result"]  # the last `result` of the doc: the scored policy's
    assert len(scored.traces[0]["scores"]) == 3 and scored.reasoning == ""
