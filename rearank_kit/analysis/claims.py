"""What a reasoning trace calls each passage: relevant, irrelevant or neutral (a keyword heuristic).

REARANK's reasoning discusses the passages of a window one by one ("Passage [3] explains the
cause, which directly answers the query. [4] is about cooking and is not relevant."). To compare
what the reasoning *says* with how the model *ranks* and how the judges *graded*
(``traces.claims_summary``, ``trace_lab.claim_agreement``), each mention of a passage is given a
claim. The classifier is made for teaching: readable rules, often right, never a judgment.

How a text is read:

1. **Mentions.** ``[3]``, ``passage 3``, ``Passage [3]``, lists after a plural (``Passages 1, 2
   and 3``, ``Passages 11 and 12``) and ranges (``[3]-[5]``, ``passages 6 to 8``).
2. **Clauses.** Sentences are cut at ``;``, ``:`` and the contrastive words *but, while, whereas,
   however, although*. Inside a clause, mentions joined only by commas, *and*, *or* form a
   *group*; the words after a group, up to the next group, are its *predicate* ("[1], [2] and [3]
   are relevant, [4] is not": two groups, two predicates). A group with a neutral predicate at
   the start of a clause takes the words before it ("The most relevant passages are [4] and [6]").
   A clause that names no passage speaks of the last group of its sentence ("[12] does not
   answer, but it explains the mechanism"), and a sentence that names none and starts with
   *it/this/they* speaks of the last group of the sentence before.
3. **Polarity of a predicate**, in this order: a negated negative (*not irrelevant*, *not
   unrelated*) or *not only ... but* is positive; *not directly relevant/answer* and hedges
   (*partially*, *somewhat*, *loosely related*, *less specific*) are weak (0); relevance
   negations (*not relevant*, *does not answer/mention/address*, *is not.*, *no information*,
   *nothing to do with*, *a different question*, *fails to*, *lacks*, *irrelevant*, *off-topic*)
   are negative, and win over positive words; relevance words (*relevant*, *answers*,
   *addresses*, *explains*, *defines*, *useful*, *matches the query*, *exactly*) are positive.
   A negation inside the passage's *content* ("explains that vitamin D is not produced in the
   liver") is not a relevance negation and does not count.
4. **Claim** of a passage: the sign of its summed polarities (mixed statements cancel: neutral).

Measured on ``tests/fixtures/claims.jsonl`` (hand-labelled sentences; its README has the
numbers before and after the rules above replaced the first, clause-level version):
``evaluate_claims()`` returns precision and recall per claim.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from rearank_kit.core.env import SOURCE_ROOT

CLAIMS = ("relevant", "irrelevant", "neutral")
FIXTURE = SOURCE_ROOT / "tests" / "fixtures" / "claims.jsonl"

# --- mentions -----------------------------------------------------------------------------------

_NUMBER_LIST = r"\d{1,4}(?:\s*(?:,\s*(?:and\s+|or\s+)?|\band\b|\bor\b|&)\s*\d{1,4})+"
_MENTION = re.compile(
    r"\[\s*(?P<lo>\d{1,4})\s*\]\s*(?:-|–|\bto\b|\bthrough\b)\s*\[\s*(?P<hi>\d{1,4})\s*\]"  # [3]-[5]
    r"|\bpassages\s+(?P<rlo>\d{1,4})\s*(?:-|–|\bto\b|\bthrough\b)\s*(?P<rhi>\d{1,4})\b"  # passages 6 to 8
    rf"|\bpassages\s+(?P<list>{_NUMBER_LIST})\b"  # passages 1, 2 and 3
    r"|\[\s*(?P<one>\d{1,4})\s*\]"  # [3]
    r"|\bpassages?\s*(?P<word>\d{1,4})\b",  # passage 3
    re.IGNORECASE,
)
_JOINER = re.compile(r"^(?:[\s,&]|\band\b|\bor\b|\bas well as\b|\bboth\b|\bpassages?\b)*$", re.IGNORECASE)


def _ids(match: re.Match) -> list[int]:
    g = match.groupdict()
    if g["lo"] or g["rlo"]:
        lo, hi = int(g["lo"] or g["rlo"]), int(g["hi"] or g["rhi"])
        return list(range(lo, hi + 1)) if 0 < hi - lo < 50 else [lo, hi]
    if g["list"]:
        return [int(n) for n in re.findall(r"\d{1,4}", g["list"])]
    return [int(g["one"] or g["word"])]


def mentioned_passages(text: str, num: int) -> list[int]:
    """1-based identifiers in ``1..num`` that ``text`` names (``[i]``, ``passage i``, ``Passage
    [i]``, ``Passages 1, 2 and 3``, ``[3]-[5]``), sorted, each once."""
    found = {i for m in _MENTION.finditer(text or "") for i in _ids(m)}
    return sorted(i for i in found if 1 <= i <= num)


# --- polarity -----------------------------------------------------------------------------------

_ADV = r"(?:very|directly|really|particularly|at\s+all|entirely|quite|that|even|especially|specifically|actually)"
_REL = r"(?:relevant|related|useful|helpful|pertinent|applicable|about|on[- ]topic)"
_VERB = (r"(?:answer|address|mention|discuss|provide|explain|give|say|describe|relate|help|cover|focus|contain|"
         r"specify|tell|define|match|seem\s+(?:to\s+be\s+)?" + _REL + r"|appear\s+(?:to\s+be\s+)?" + _REL + ")")
_NOT = r"(?:not|n't|never)"

_DOUBLE_NEGATIVE = re.compile(rf"\b{_NOT}\s+(?:{_ADV}\s+)?(?:irrelevant|unrelated|off[- ]topic|useless|unhelpful)\b"
                              r"|\bnot\s+(?:only|just)\b", re.IGNORECASE)  # fmt: skip
_WEAK = re.compile(
    rf"{_NOT}\s+directly\s+(?:relevant|related|answer\w*|address\w*)"
    r"|\b(?:somewhat|partially|partly|marginally|slightly|tangentially|loosely|indirectly|moderately)\b"
    r"|\bless\s+(?:relevant|related|useful|helpful|specific|detailed|direct)\b|\bto\s+some\s+extent\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    rf"\b(?:is|are|was|were|seems?|appears?)\s+{_NOT}\s+(?:{_ADV}\s+)*(?:{_REL})"
    rf"|\bnot\s+(?:{_ADV}\s+)*{_REL}"
    rf"|\b(?:does|do|did|can|could|will|would)\s*{_NOT}\s+(?:{_ADV}\s+)*{_VERB}"
    r"|\bfails?\s+to\b|\bfailing\s+to\b|\black(?:s|ing)?\b"
    r"|\b(?:is|are)\s+not\s*(?:[.,;:!]|$)"  # "[4] is not." : the word left out is "relevant"
    r"|\bno\s+(?:\w+\s+)?(?:information|mention|relevance|answer|details?|data|connection|bearing)\b"
    r"|\bnothing\s+to\s+do\s+with\b|\b(?:a|another)\s+different\b|\bnot\s+this\s+one\b"
    r"|\bwithout\s+(?:giving\s+|providing\s+)?(?:an?\s+|any\s+)?(?:answer\w*|address\w*|relevance)"
    r"|\birrelevant\b|\bunrelated\b|\boff[- ]topic\b|\bleast\s+(?:relevant|useful|related)\b",
    re.IGNORECASE,
)
_POSITIVE = re.compile(
    r"\b(?:relevant|directly|answers?|answering|address(?:es)?|explains?|defines?|useful|helpful|pertinent)\b"
    r"|\bmatche?s?\s+(?:the\s+)?(?:query|question|user)|\b(?:best|good|strong|exact|close)\s+match"
    r"|\bmatching\s+the\s+(?:query|question)|\bexact(?:ly)?\b|\bwhat\s+the\s+(?:query|user|question)\s+(?:asks|wants)"
    r"|\brelated\s+to\s+the\s+(?:query|question)|\b(?:right|correct)\s+topic\b|\bon[- ]topic\b",
    re.IGNORECASE,
)


def clause_polarity(clause: str) -> int:
    """+1 when a predicate calls its passage relevant, -1 irrelevant, 0 neither (or only weakly)."""
    text = clause or ""
    flipped = bool(_DOUBLE_NEGATIVE.search(text))
    text = _DOUBLE_NEGATIVE.sub(" ", text)
    weak = bool(_WEAK.search(text))
    text = _WEAK.sub(" ", text)
    if _NEGATIVE.search(text):
        return -1
    if flipped:
        return 1
    if weak:
        return 0
    return 1 if _POSITIVE.search(text) else 0


# --- clauses, groups, claims --------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"\s*[;:]\s*|\s*,?\s*\b(?:but|while|whereas|however|although)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"^\W*(?:it|its|this|these|they|their|the\s+passage)\b", re.IGNORECASE)


def _groups(clause: str, num: int) -> list[tuple[list[int], str, str]]:
    """(ids, predicate, text before) for each group of mentions in a clause."""
    matches = list(_MENTION.finditer(clause))
    groups: list[list[re.Match]] = []
    for m in matches:
        if groups and _JOINER.match(clause[groups[-1][-1].end() : m.start()]):
            groups[-1].append(m)
        else:
            groups.append([m])
    out = []
    for i, group in enumerate(groups):
        end = groups[i + 1][0].start() if i + 1 < len(groups) else len(clause)
        before = clause[: group[0].start()] if i == 0 else ""
        ids = [n for m in group for n in _ids(m) if 1 <= n <= num]
        if ids:
            out.append((list(dict.fromkeys(ids)), clause[group[-1].end() : end], before))
    return out


def claim_evidence(text: str, num: int) -> list[dict]:
    """Every statement the classifier read: ``{"ids", "text", "polarity"}`` in reading order
    (``classify_claims`` sums them); the view to show a learner *why* a claim was made."""
    evidence: list[dict] = []
    last: list[int] = []  # the last group named, for clauses and sentences that name none
    for sentence in _SENTENCE.split(text or ""):
        if not sentence.strip():
            continue
        in_sentence: list[int] = []
        for clause in _CLAUSE.split(sentence):
            if not clause or not clause.strip():
                continue
            groups = _groups(clause, num)
            if not groups:
                target = in_sentence or (last if _PRONOUN.match(sentence) else [])
                if target:
                    evidence.append({"ids": list(target), "text": clause.strip(), "polarity": clause_polarity(clause)})
                continue
            for i, (ids, predicate, before) in enumerate(groups):
                polarity = clause_polarity(predicate)
                if polarity == 0 and i == 0 and before.strip():
                    polarity = clause_polarity(before)
                evidence.append({"ids": ids, "text": clause.strip(), "polarity": polarity})
                in_sentence = ids
        last = in_sentence or last
    return evidence


def classify_claims(text: str, num: int) -> dict[int, str]:
    """What the reasoning calls each passage it makes a statement about: 1-based id ->
    relevant/irrelevant/neutral, the sign of the summed polarities (see the module docstring)."""
    scores: dict[int, int] = {}
    for item in claim_evidence(text, num):
        for i in item["ids"]:
            scores[i] = scores.get(i, 0) + item["polarity"]
    return {i: ("relevant" if s > 0 else "irrelevant" if s < 0 else "neutral") for i, s in sorted(scores.items())}


# --- how good is it? ----------------------------------------------------------------------------


def load_claims_fixture(path: str | os.PathLike | None = None) -> list[dict]:
    """The hand-labelled sentences: ``{"id", "num", "text", "labels": {"3": "relevant", ...}}``."""
    from rearank_kit.core.errors import DataError
    from rearank_kit.core.files import read_jsonl

    path = Path(path) if path else FIXTURE
    rows = []
    for number, rec in read_jsonl(path).numbered():
        for key in ("text", "num", "labels"):
            if key not in rec:
                raise DataError(f"{path}:{number}: no '{key}' field")
        bad = {k: v for k, v in rec["labels"].items() if v not in CLAIMS or not str(k).isdigit()}
        if bad:
            raise DataError(f"{path}:{number}: field 'labels' holds {bad}; ids are numbers, claims one of {CLAIMS}")
        rows.append(rec)
    return rows


def evaluate_claims(rows: Iterable[Mapping] | None = None, classify=classify_claims):
    """Precision and recall of ``classify(text, num)`` against labelled sentences (default: the
    fixture), per claim and for the mentions themselves, over (sentence, passage) pairs: a claim
    made about a passage the label does not name counts against precision, a labelled passage
    left without a claim against recall. Returns a DataFrame (rows: the claims, ``mention``,
    ``all``; columns: precision, recall, f1, predicted, labelled, correct)."""
    import pandas as pd

    rows = load_claims_fixture() if rows is None else list(rows)
    counts = {c: {"predicted": 0, "labelled": 0, "correct": 0} for c in (*CLAIMS, "mention")}
    right = total = 0
    for row in rows:
        gold = {int(k): v for k, v in row["labels"].items()}
        pred = classify(row["text"], int(row["num"]))
        for claim in CLAIMS:
            counts[claim]["predicted"] += sum(v == claim for v in pred.values())
            counts[claim]["labelled"] += sum(v == claim for v in gold.values())
            counts[claim]["correct"] += sum(pred.get(k) == v for k, v in gold.items() if v == claim)
        counts["mention"]["predicted"] += len(pred)
        counts["mention"]["labelled"] += len(gold)
        counts["mention"]["correct"] += len(set(pred) & set(gold))
        right += sum(pred.get(k) == v for k, v in gold.items())
        total += len(gold)
    table = pd.DataFrame.from_dict(counts, orient="index")
    table.loc["all"] = [sum(counts[c]["predicted"] for c in CLAIMS), total, right]
    table["precision"] = table["correct"] / table["predicted"].where(table["predicted"] > 0)
    table["recall"] = table["correct"] / table["labelled"].where(table["labelled"] > 0)
    table["f1"] = 2 * table["precision"] * table["recall"] / (table["precision"] + table["recall"])
    return table[["precision", "recall", "f1", "predicted", "labelled", "correct"]]
