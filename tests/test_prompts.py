"""Prompt templates: the exact text a model sees, the hash that names it, and bad template files."""

import dataclasses
import json
from pathlib import Path

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import TEMPLATE_DIR, PromptTemplate, available_templates, clean_passage, load_template

QUERY = "what is a cat"
PASSAGES = ["A cat is a small   feline.\n It purrs.", "Cars have wheels."]

# The rearank prompt through SmolLM2's ChatML template, character for character. The missing
# spaces after "query." and the 12 spaces that start most lines of the last turn are REARANK's
# original string (the released checkpoint saw them).
REARANK_RENDERED = (
    "<|im_start|>system\nYou are DeepRerank, an intelligent assistant that can rank passages based on their "
    "relevancy to the search query. You first thinks about the reasoning process in the mind and then provides "
    "the user with the answer.<|im_end|>\n"
    "<|im_start|>user\nI will provide you with passages, each indicated by number identifier []. Rank the "
    "passages based on their relevance to the search query.Search Query: what is a cat. \nRank the 2 passages "
    "above based on their relevance to the search query.The passages should be listed in descending order using "
    "identifiers. The most relevant passages should be listed first. The output format should be "
    "<answer> [] > [] </answer>, e.g., <answer> [1] > [2] </answer>.<|im_end|>\n"
    "<|im_start|>assistant\nOkay, please provide the passages.<|im_end|>\n"
    "<|im_start|>user\n[1] A cat is a small feline. It purrs.<|im_end|>\n"
    "<|im_start|>assistant\nReceived passage [1].<|im_end|>\n"
    "<|im_start|>user\n[2] Cars have wheels.<|im_end|>\n"
    "<|im_start|>assistant\nReceived passage [2].<|im_end|>\n"
    '<|im_start|>user\nPlease rank these passages according to their relevance to the search query: "what is a '
    'cat"\n            Follow these steps exactly:\n            1. First, within <think> tags, analyze EACH passage '
    "individually:\n            - Evaluate how well it addresses the query\n            - Note specific relevant "
    "information or keywords\n\n            2. Then, within <answer> tags, provide ONLY the final ranking in "
    "descending order of relevance using the format: [X] > [Y] > [Z]<|im_end|>\n"
    "<|im_start|>assistant\n"
)

COMPACT_RENDERED = (
    "<|im_start|>system\nYou rank passages by how well they answer a search query.<|im_end|>\n"
    "<|im_start|>user\nQuery: what is a cat\n\n[1] A cat is a small feline. It purrs.\n[2] Cars have wheels.\n\n"
    "Rank the 2 passages above from most to least relevant to the query. Answer only with "
    "<answer>[2] > [1] > ...</answer>.<|im_end|>\n"
    "<|im_start|>assistant\n<answer>["
)

# Pinned on purpose: a change to a bundled prompt must be a visible, deliberate edit here too.
PINNED_HASHES = {"rearank": "7b30f9718606", "rankgpt": "1905a15c0855", "compact": "c86b1aea38cc"}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from rearank_kit.rank.bundled import prepare_bundled_model

    return AutoTokenizer.from_pretrained(prepare_bundled_model(quiet=True))


def test_rearank_rendered_through_bundled_chat_template(tokenizer):
    assert load_template("rearank").render(tokenizer, QUERY, PASSAGES) == REARANK_RENDERED


def test_compact_rendered_inline_and_ends_with_prefill(tokenizer):
    compact = load_template("compact")
    assert compact.prefill == "<answer>["
    assert compact.render(tokenizer, QUERY, PASSAGES) == COMPACT_RENDERED


def test_rearank_messages_pinned():
    msgs = load_template("rearank").messages(QUERY, PASSAGES)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"].startswith("You are DeepRerank")
    assert "Search Query: what is a cat. \nRank the 2 passages" in msgs[1]["content"]
    assert msgs[2:7] == [
        {"role": "assistant", "content": "Okay, please provide the passages."},
        {"role": "user", "content": "[1] A cat is a small feline. It purrs."},
        {"role": "assistant", "content": "Received passage [1]."},
        {"role": "user", "content": "[2] Cars have wheels."},
        {"role": "assistant", "content": "Received passage [2]."},
    ]
    assert msgs[7]["content"].startswith('Please rank these passages according to their relevance to the search query: "what is a cat"\n')
    assert msgs[7]["content"].endswith("using the format: [X] > [Y] > [Z]")


# --- the authors' own messages, token for token -------------------------------------------------

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "paper" / "official_prompts.json"


@pytest.fixture(scope="module")
def official() -> dict:
    """The chat messages the authors' code (lezhang7/Rearank, rank_gpt.py) builds for one window."""
    if not OFFICIAL.is_file():
        pytest.skip(f"{OFFICIAL} not found (the authors' prompts are kept beside the checkout, in ../shared/paper)")
    return json.loads(OFFICIAL.read_text(encoding="utf-8"))


def _ids(tokenizer, messages) -> list[int]:
    from rearank_kit.core.prompts import render_chat

    return list(tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize(("name", "key"), [("rearank", "rearank_messages"), ("rankgpt", "rankgpt_messages")])
def test_bundled_template_gives_the_authors_messages(official, name, key):
    # Raw passages: one with an empty-title prefix, one with stray whitespace, one longer than
    # both limits, so the cleaning and the cut are compared too.
    ours = load_template(name).messages(official["query"], official["passages"])
    theirs = official[key]
    assert [m["role"] for m in ours] == [m["role"] for m in theirs]
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a["content"] == b["content"], f"{name}: message {i} ({b['role']}) differs"


@pytest.mark.parametrize(("name", "key"), [("rearank", "rearank_messages"), ("rankgpt", "rankgpt_messages")])
def test_bundled_template_gives_the_authors_token_ids(official, tokenizer, name, key):
    template = load_template(name)
    assert template.prefill == ""  # the authors' prompt ends at the generation prompt
    rendered = template.render(tokenizer, official["query"], official["passages"])
    ours = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert ours == _ids(tokenizer, official[key])
    if name == "rearank":  # the indentation survives tokenization: 12 spaces are not dropped or merged away
        assert ours != _ids(tokenizer, [*official[key][:-1], {"role": "user", "content": "\n".join(
            line.strip() for line in official[key][-1]["content"].split("\n"))}])


def test_rankgpt_departs_from_rankgpts_own_code_as_documented(official):
    """The template leaves out RankGPT's "Received passage [i]." turns, as the authors' code does,
    and says how to put them back: with passage_ack set, each passage turn gets its answer."""
    rankgpt = load_template("rankgpt")
    assert rankgpt.passage_ack == ""
    text = (TEMPLATE_DIR / "rankgpt.toml").read_text(encoding="utf-8")
    assert 'passage_ack = "Received passage [{index}]."' in text and "comments" in text
    acked = dataclasses.replace(rankgpt, passage_ack="Received passage [{index}].")
    expected = []
    for message in official["rankgpt_messages"]:
        expected.append(message)
        if message["role"] == "user" and message["content"].startswith("[") and message is not official["rankgpt_messages"][-1]:
            index = message["content"][1 : message["content"].index("]")]
            expected.append({"role": "assistant", "content": f"Received passage [{index}]."})
    assert acked.messages(official["query"], official["passages"]) == expected
    assert len(expected) == len(official["rankgpt_messages"]) + len(official["passages"])


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("Title: Content: Body text.", "Body text."),  # an untitled BEIR document, as the authors build it
    ("Title:   Content:\n Body", "Body"),  # the same after whitespace is collapsed
    ("Title: A Content: Body", "Title: A Content: Body"),  # a real title stays
    ("  a \n\n b\tc  ", "a b c"),
])  # fmt: skip
def test_clean_passage_removes_the_empty_title_prefix(raw, cleaned):
    assert clean_passage(raw, 400) == cleaned


def test_cut_passage_keeps_a_trailing_space_as_the_authors_do():
    assert clean_passage("aaa bbb ccc", 4) == "aaa "


def test_compact_messages_inline():
    msgs = load_template("compact").messages(QUERY, PASSAGES)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "\n\n[1] A cat is a small feline. It purrs.\n[2] Cars have wheels.\n\n" in msgs[1]["content"]


@pytest.mark.parametrize(("name", "limit"), [("rearank", 400), ("rankgpt", 300), ("compact", 300)])
def test_passages_whitespace_collapsed_and_cut(name, limit):
    template = load_template(name)
    assert template.max_passage_chars == limit
    long = "word \t\n " * 200  # 1600 characters, 200 words once collapsed
    msgs = template.messages(QUERY, [long])
    expected = "[1] " + ("word " * 200).strip()[:limit]
    text = "\n".join(m["content"] for m in msgs)
    assert expected in text
    assert "[1] " + ("word " * 200).strip()[: limit + 1] not in text
    assert clean_passage("  a \n\n b\tc  ", 100) == "a b c"


def test_literal_braces_in_query_and_passages_survive():
    msgs = load_template("compact").messages("json {query} {x}", ["a {text} b"])
    assert "Query: json {query} {x}" in msgs[1]["content"]
    assert "[1] a {text} b" in msgs[1]["content"]


def test_template_hash_stable_and_sensitive():
    assert set(available_templates()) >= set(PINNED_HASHES)
    for name, digest in PINNED_HASHES.items():
        assert load_template(name).hash == digest
        assert load_template(name).hash == load_template(name).hash
    base = load_template("rearank")
    for field in ("system", "final_user", "passage", "prefill", "version"):
        changed = dataclasses.replace(base, **{field: getattr(base, field) + " "})
        assert changed.hash != base.hash, field
    assert dataclasses.replace(base, max_passage_chars=300).hash != base.hash
    assert base.label == f"rearank@2#{base.hash}"


def test_load_template_accepts_object_and_path(tmp_path):
    base = load_template("compact")
    assert load_template(base) is base
    path = tmp_path / "mine.toml"
    path.write_text((TEMPLATE_DIR / "compact.toml").read_text().replace('"compact"', '"mine"'))
    mine = load_template(path)
    assert isinstance(mine, PromptTemplate) and mine.name == "mine"


GOOD = """name = "t"
version = "1"
max_passage_chars = 100
passage_style = "inline"
passage = "[{index}] {text}"
final_user = "Query: {query}\\n{passages}"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + 'colour = "blue"\n', "unknown template field(s) colour"),
        (GOOD.replace('version = "1"\n', ""), "missing template field(s) version"),
        (GOOD.replace('"inline"', '"sideways"'), "passage_style must be 'turns' or 'inline'"),
        (GOOD.replace("{passages}", ""), "needs '{passages}'"),
        (GOOD.replace("{text}", "text"), "needs a '{text}' placeholder"),
        (GOOD.replace("100", "0"), "max_passage_chars must be a positive integer"),
        (GOOD + "system = 3\n", "field 'system' must be a string"),
        ("name = [unclosed", "invalid TOML"),
    ],
)
def test_bad_template_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(KitError) as info:
        load_template(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_good_template_file_loads(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    t = load_template(path)
    assert t.messages("q", ["p"]) == [{"role": "user", "content": "Query: q\n[1] p"}]


def test_unknown_template_name_lists_bundled():
    with pytest.raises(KitError, match="bundled: .*compact"):
        load_template("no-such-template")
