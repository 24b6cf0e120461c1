"""The decoding-step bound of benchmarks/rerank_vs_authors.py: what pipelining could save at most."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from rerank_vs_authors import decode_steps  # noqa: E402


def calls(lengths: dict[str, list[int]]) -> list[dict]:
    """Calls in each query's window order, queries interleaved as a lock-step loop returns them."""
    out = []
    for k in range(max(map(len, lengths.values()))):
        out += [{"qid": q, "output_tokens": ls[k]} for q, ls in lengths.items() if k < len(ls)]
    return out


@pytest.mark.parametrize(
    ("lengths", "batch", "lock_step", "longest_query"),
    [
        # uniform replies: lock-step loses nothing
        ({"a": [7, 7, 7], "b": [7, 7, 7]}, 16, 21, 21),
        # one query longest at every position: nothing to save either
        ({"a": [128, 128], "b": [17, 40]}, 16, 256, 256),
        # the straggler moves between queries: lock-step pays 100 twice, each query only once
        ({"a": [100, 10], "b": [10, 100]}, 16, 200, 110),
        # queries of unequal window counts: a position only waits for the queries that have it
        ({"a": [5, 5, 5], "b": [9]}, 16, 19, 15),
        # batches of one query: lock-step is sequential, the sum of every query's replies
        ({"a": [100, 10], "b": [10, 100]}, 1, 220, 110),
    ],
)
def test_decode_steps(lengths, batch, lock_step, longest_query):
    got = decode_steps(calls(lengths), batch=batch)
    assert (got["lock_step"], got["longest_query"]) == (lock_step, longest_query)
    assert got["ratio"] == round(longest_query / lock_step, 3)
