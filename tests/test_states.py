"""The state cache a scored policy reads: exact states of the real bundled model, resumable, refused
when built for another model, prompt or layers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import load_pair_prompt
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank import states as states_module
from rearank_kit.rank.states import PAIRS_LOG, build_states, load_states, state_key

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small(sample_dir):
    return load_benchmark(sample_dir, top_k=3).head(4)


@pytest.fixture(scope="module")
def built(small, tmp_path_factory):
    folder = tmp_path_factory.mktemp("states") / "cache"
    return build_states(small, folder, layers=(2, 4), batch_size=4, progress=False)


def test_the_states_are_the_whole_models_hidden_states(small, built):
    """Cut after layer 4 (and one more), the kept states equal hidden_states[L] of the whole model at
    the prompt's last token, up to float16 rounding."""
    import torch

    from rearank_kit.rank.policy import load_hf_model

    model, tokenizer = load_hf_model("smollm2-135m")
    prompt = load_pair_prompt("relevance")
    ranking = small.rankings[1]
    candidate = ranking.candidates[2]
    enc = tokenizer([prompt.render(tokenizer, ranking.query.text, candidate.text)], return_tensors="pt",
                    add_special_tokens=False)  # fmt: skip
    with torch.no_grad():
        hidden = model.model(**enc, output_hidden_states=True).hidden_states
    got = built.matrix(ranking.query.qid, [candidate.docid])[0]
    for i, layer in enumerate((2, 4)):
        want = hidden[layer][0, -1].numpy()
        assert np.abs(got[i] - want).max() <= 2e-3 * np.abs(want).max() + 1e-3
    assert len(built) == 12 and built.states.dtype == np.float16
    manifest = json.loads((built.folder / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["template"] == "relevance" and manifest["key"]["layers"] == [2, 4]


def test_an_interrupted_build_resumes_and_a_deeper_list_adds_only_new_pairs(small, built, tmp_path, monkeypatch):
    monkeypatch.setattr(states_module, "CHUNK_PAIRS", 4)
    calls = []
    real = states_module._Extractor.__call__

    def counting(self, texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # between the first and the second chunk
        return real(self, texts)

    monkeypatch.setattr(states_module._Extractor, "__call__", counting)
    with pytest.raises(KeyboardInterrupt):
        build_states(small, tmp_path / "c", layers=(2, 4), batch_size=4, progress=False)
    assert len(list(states_module.iter_jsonl(tmp_path / "c" / PAIRS_LOG))) == 4  # the finished chunk is kept
    monkeypatch.setattr(states_module._Extractor, "__call__", real)
    resumed = build_states(small, tmp_path / "c", layers=(2, 4), batch_size=4, progress=False)
    assert len(resumed) == 12
    for r in small.rankings:  # other batches, other float rounding: close, not bit-equal
        assert np.allclose(resumed.matrix(r.query.qid, r.docids), built.matrix(r.query.qid, r.docids), atol=0.05)
    deeper = load_benchmark(small.path, top_k=4).head(4)
    grown = build_states(deeper, tmp_path / "c", layers=(2, 4), batch_size=4, progress=False)
    assert len(grown) == 16 and json.loads((tmp_path / "c" / "manifest.json").read_text())["last_build"]["pairs"] == 4


def test_a_cache_for_other_settings_is_refused_naming_both(small, built, tmp_path):
    with pytest.raises(KitError, match=r"another model, prompt or layers \(layers: cache \[2, 4\], asked \[15\]\)"):
        build_states(small, built.folder, layers=(15,), progress=False)
    key = state_key("smollm2-135m", load_pair_prompt("relevance"), (2, 4))
    assert load_states(built.folder, key).key == key
    with pytest.raises(KitError, match="no state for query"):
        built.matrix(small.rankings[0].query.qid, ["not-a-candidate"])
    with pytest.raises(KitError, match="holds layers \\[2, 4\\], not layer 3"):
        built.layer_index(3)


def test_a_folder_the_kit_did_not_make_is_left_alone(small, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(KitError, match="not empty and not a state cache"):
        build_states(small, tmp_path / "mine", layers=(2,), progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]
