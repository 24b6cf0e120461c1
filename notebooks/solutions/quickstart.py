"""Solutions to notebook 00's exercises: nDCG@k and the sliding-window positions."""

import math


def my_ndcg_at_k(ranked_docids, judgments, k=10):
    # DCG: each of the first k passages adds its grade (unjudged: 0), discounted by log2(position + 1),
    # positions counted from 1, so enumerate's 0-based i is position i + 1.
    dcg = sum(max(judgments.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked_docids[:k]))
    # The ideal: every judged grade of the query, highest first, cut at k (trec_eval's definition).
    best = sorted((max(g, 0) for g in judgments.values()), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(best))
    return dcg / ideal if ideal > 0 else 0.0  # nothing relevant: 0, by convention


def my_window_positions(k, window, step):
    if k <= 0:
        return []
    if k <= window:  # one window over the whole list
        return [(0, k)]
    positions, end = [], k
    while True:  # from the bottom of the list up; the last window always starts at 0
        start = max(end - window, 0)
        positions.append((start, end))
        if start == 0:
            return positions
        end -= step
