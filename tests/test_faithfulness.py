"""The faithfulness probes: their measures on two scripted rankers whose behaviour is known, then a
real run of the bundled model (every probe parsed, the table complete)."""

from __future__ import annotations

import re

import pytest

from rearank_kit.analysis.faithfulness import ProbeConfig, faithfulness_table, run_probes
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank.backends import Backend
from rearank_kit.rank.backends.base import Generation


class Scripted(Backend):
    """A ranker that *reads* (ranks passages by how many query words their text holds) or one that
    only looks at *positions* (always answers [1] > [2] > ...). Not a model: the subject measured."""

    name = "scripted"

    def __init__(self, reads: bool):
        super().__init__("scripted-reader" if reads else "scripted-positional")
        self.reads = reads

    def _generate(self, conversations, config, prefill):
        out = []
        for conv in conversations:
            text = "\n".join(m["content"] for m in conv)
            query = set(re.findall(r"\w+", re.search(r"query: ?\"?([^\n\"]+)", text, re.I).group(1).lower()))
            passages = re.findall(r"^\[(\d+)\] ?(.*)$", text, re.M)
            if self.reads:
                key = {int(i): (-len(query & set(re.findall(r"\w+", p.lower()))), p) for i, p in passages}
                order = sorted(key, key=key.get)  # by the text alone: ties broken by the text, not the slot
                think = f"[{order[0]}] answers the query and is relevant. [{order[-1]}] is not relevant."
            else:
                order, think = sorted(int(i) for i, _ in passages), "They all look alike."
            reply = f"<think>{think}</think><answer>{' > '.join(f'[{i}]' for i in order)}</answer>"
            out.append(Generation((prefill or "") + reply, 0, 10, "stop"))
        return out


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("sample", top_k=5)


def test_a_reader_follows_the_text_a_positional_ranker_the_slots(bench):
    config = ProbeConfig(window=5, queries=4, template="rearank", max_new_tokens=64)  # no prefill
    table = faithfulness_table({"reader": run_probes(bench, Scripted(reads=True), config),
                                "positional": run_probes(bench, Scripted(reads=False), config)})  # fmt: skip
    reader, positional = table.loc["reader"], table.loc["positional"]
    assert reader["swap: follows the text"] == 1.0 and reader["remove top: tau of the rest"] == 1.0
    assert reader["shuffle: same top 1"] == 1.0 and reader["swap: claim follows the text"] == 1.0
    assert positional["swap: follows the slot"] == 1.0 and positional["swap: follows the text"] == 0.0
    assert positional["top 1 was shown first"] == 1.0 and positional["shuffle: tau"] < 1.0
    assert table["windows"].tolist() == [4, 4]


@pytest.mark.slow
def test_the_bundled_model_is_probed(bench):
    from rearank_kit.rank.backends import load_backend

    with load_backend("hf", model="smollm2-135m") as backend:
        probes = run_probes(bench, backend, ProbeConfig(window=4, queries=2, template="compact", max_new_tokens=16))
    assert sorted(probes["probe"].value_counts().items()) == [("original", 2), ("remove", 2), ("shuffle", 2),
                                                              ("swap", 2)]  # fmt: skip
    assert all(len(r) == len(s) for r, s in zip(probes["by_text"], probes["shown"], strict=True))
    table = faithfulness_table({"smollm2-135m": probes})
    assert 0.0 <= table.loc["smollm2-135m", "top 1 was shown first"] <= 1.0
