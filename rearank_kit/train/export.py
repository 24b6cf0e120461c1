"""Export a training run as a standalone model: merged weights, a model card, the kit's record.

A kit run folder holds a LoRA adapter (or full weights) beside a manifest that says how the model
was trained. ``export_run`` turns it into an ordinary Hugging Face checkpoint that any tool loads
without the kit (the adapter merged into its base), plus:

* ``README.md``: a model card (Hugging Face's front matter, then the base model, the prompt
  template and its hash, the reward and its weights, the training data and its fingerprint, the
  training settings, and the held-out results when evaluation folders are given);
* ``rearank_kit.json``: the conventions the kit needs to run it as it was trained (template,
  prefill, parsing mode, window; ``policy.resolve_policy`` reads it), and the run's manifest.

    rearank-kit export runs/grpo runs/grpo-merged --heldout runs/eval-grpo
    rearank-kit rerank --model runs/grpo-merged --data dl19 --out runs/dl19-grpo

``model_card`` is the one writer of model cards: ``rearank-kit train --push-to-hub`` uses it too.
Everything is written into a temporary folder and renamed into place at the end. Both files are
scrubbed of secrets (``core/secrets.py``): the run's manifest they carry is uploaded by
``--push-to-hub``. ``rearank_kit.json`` is also the folder's record (``kind: export`` and the
``files`` written): ``--overwrite`` replaces an earlier export, never a folder of other files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import (
    atomic_write_text,
    check_published_out,
    publish_folder,
    read_json,
    staged_folder,
    write_json,
)
from rearank_kit.core.secrets import scrub, scrub_text
from rearank_kit.core.stats import format_interval
from rearank_kit.rank.policy import EXPORT_RECORD, resolve_policy


def heldout_summary(folder: str | os.PathLike) -> dict[str, Any]:
    """The figures of an ``evaluate-sets`` folder that a model card reports."""
    folder = Path(folder)
    m = read_json(folder / "metrics.json")
    for key in ("split", "sets", "queries", "rank_reward", "ndcg10_initial", "ndcg10_reranked", "vs_initial_order"):
        if key not in m:
            raise KitError(f"{folder / 'metrics.json'}: field {key!r} is missing; is this an evaluate-sets folder?")
    keep = {k: m[k] for k in ("split", "sets", "queries", "lenient", "template", "ndcg10_initial", "ndcg10_reranked",
                              "vs_initial_order", "complete_answers", "copied_input_order") if k in m}
    keep["rank_reward_mean"] = m["rank_reward"]["mean"]
    if "comparison" in m:
        keep["comparison"] = m["comparison"]
    keep["folder"] = str(folder)
    return keep


def model_card(record: dict[str, Any], heldout: list[dict[str, Any]] | None = None, repo_id: str | None = None) -> str:
    """A Hugging Face model card (markdown with YAML front matter) for an exported or pushed run,
    generative or scored (``record["family"]``)."""
    scored = record.get("family") == "scored"
    manifest = record.get("manifest") or {}
    base = record.get("base_model") or manifest.get("model")
    title = repo_id or record.get("name") or "rearank-kit model"
    hub_base = base and str(base).count("/") == 1 and not Path(str(base)).exists()  # a hub id, not a folder
    lines = [
        "---",
        *(["library_name: rearank-kit"] if scored else ["library_name: transformers", "pipeline_tag: text-generation"]),
        *([f"base_model: {base}"] if hub_base else []),
        "tags: [reranking, listwise-reranking, grpo, rearank, rearank-kit]",
        "---",
        "",
        f"# {title}",
        "",
        *(_scored_card(record) if scored else _generative_card(record, manifest, base)),
    ]
    if heldout:
        lines += ["", "## Held-out results", "",
                  "Augmented sets of queries never trained on, each reranked once greedily. Intervals come from a "
                  "bootstrap over queries then sets.", "",
                  "| split | sets (queries) | nDCG@10 initial -> reranked | gain over the initial order | mean rank reward |",
                  "| --- | --- | --- | --- | --- |"]
        for h in heldout:
            lines.append(f"| {h['split']} | {h['sets']} ({h['queries']}) | {h['ndcg10_initial']:.4f} -> "
                         f"{h['ndcg10_reranked']:.4f} | {format_interval(h['vs_initial_order'])} | {h['rank_reward_mean']:+.4f} |")
        for h in heldout:
            if "comparison" in h:
                c = h["comparison"]
                lines.append(f"\nAgainst `{c['against']}` on the {h['split']} sets: rank reward "
                             f"{format_interval(c['rank_reward'])}; nDCG@10 {format_interval(c['ndcg10_reranked'])}.")
    return "\n".join(lines) + "\n"


_USE = ["## Use", "", "```bash", "rearank-kit rerank --model PATH_OR_REPO --data dl19 --out runs/dl19", "```", ""]


def _generative_card(record: dict[str, Any], manifest: dict[str, Any], base: Any) -> list[str]:
    config = manifest.get("config") or {}
    reward = manifest.get("reward") or {}
    return [
        "A listwise passage reranker trained with GRPO by [rearank-kit](https://github.com/) following REARANK "
        "(Zhang et al., 2025, arXiv:2505.20046). It reads a query and a numbered window of passages and answers "
        "with a ranking such as `<answer>[3] > [1] > [2]</answer>`.",
        "",
        "## How it was trained",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{base}` |",
        f"| prompt template | `{record.get('template')}` (hash `{record.get('template_hash')}`), reply prefilled with "
        f"`{record.get('prefill') or ''}` |",
        f"| passages per prompt (window) | {record.get('window')} |",
        f"| reward | mode `{reward.get('mode')}`, weights {reward.get('weights')} for {reward.get('functions')}, "
        f"{'lenient' if record.get('lenient') else 'strict'} parsing |",
        f"| training data | `{manifest.get('data')}`, fingerprint `{manifest.get('data_fingerprint')}`, "
        f"{manifest.get('sets')} sets |",
        f"| preset | `{manifest.get('preset')}` |",
        f"| steps | {(manifest.get('result') or {}).get('steps', config.get('max_steps'))} |",
        f"| GRPO | {config.get('num_generations')} completions per prompt, lr {config.get('learning_rate')}, "
        f"beta {config.get('beta')}, temperature {config.get('temperature')}, loss `{config.get('loss_type')}` |",
        f"| adapter | LoRA r={config.get('lora_r')} (merged into the base)" if config.get("lora_r") else
        "| adapter | none: full fine-tuning |",
        f"| kit commit | `{manifest.get('git_commit')}` |",
        "",
        *_USE,
        f"Prompt it with the `{record.get('template')}` template of rearank-kit (the kit reads `{EXPORT_RECORD}` "
        "and does so by itself); another prompt measures something else.",
    ]


def _scored_card(record: dict[str, Any]) -> list[str]:
    training = record.get("training") or {}
    return [
        "A scored listwise reranking policy from rearank-kit: a linear head on the hidden states of a frozen language "
        "model, added to the first stage's z-scored score, trained with GRPO on REARANK's reward "
        "(`rearank_kit/rank/scored.py`). It ranks a whole list at once: one forward pass per (query, passage).",
        "",
        "## How it was trained",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model (frozen, not included) | `{record.get('base_model')}` |",
        f"| pair prompt | `{record.get('template')}` (hash `{record.get('template_hash')}`), passages cut to "
        f"{record.get('passage_words')} words |",
        f"| layers read | {record.get('layers')}, last token |",
        f"| prior | `{record.get('prior')}`, weight {record.get('prior_weight'):g} |",
        f"| training | {training.get('method')}, {training.get('steps')} steps |",
        "",
        *_USE,
        f"The kit reads the pair prompt, the layers and the prior from `{EXPORT_RECORD}`; the base model is loaded "
        "from its own source.",
    ]


def export_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What ``rearank_kit.json`` holds for a run (or a checkpoint inside one)."""
    policy = resolve_policy(run_dir)
    if not policy.trained or policy.record is None:
        raise KitError(f"{run_dir}: not a kit training run (no manifest.json of kind 'train')")
    from rearank_kit.core.prompts import load_template

    template = load_template(policy.template)
    manifest = read_json(Path(policy.record))
    return scrub({  # a manifest written before the kit scrubbed them may hold a token
        "kind": "export", "name": Path(run_dir).name, "base_model": manifest.get("model"),
        "template": policy.template, "template_hash": template.hash, "prefill": template.prefill,
        "lenient": policy.lenient, "window": policy.window, "adapter_merged": policy.adapter is not None,
        "manifest": manifest,
    })  # fmt: skip


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, heldout: list[str | os.PathLike] = (),
               overwrite: bool = False, repo_id: str | None = None) -> Path:
    """Write ``out_dir``: merged weights and tokenizer, ``README.md``, ``rearank_kit.json``."""
    from rearank_kit.core.prompts import load_template
    from rearank_kit.rank.policy import check_template_hash, load_hf_model

    out = Path(out_dir)
    # before the model loads: new, empty, or with --overwrite an earlier export (anything else refused)
    check_published_out(out, "export", (), overwrite, label="OUT_DIR ")
    policy = resolve_policy(run_dir)
    if policy.family == "scored":
        return _export_scored(Path(run_dir), out, heldout, repo_id)
    check_template_hash(policy, load_template(policy.template))
    record = export_record(run_dir)
    results = [heldout_summary(h) for h in heldout]
    record["heldout"] = results
    model, tokenizer = load_hf_model(policy.base, adapter=policy.adapter)
    with staged_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record["files"] = sorted([p.name for p in tmp.iterdir()] + ["README.md", EXPORT_RECORD])
        write_json(tmp / EXPORT_RECORD, scrub(record))
        atomic_write_text(tmp / "README.md", scrub_text(model_card(record, results, repo_id=repo_id)))
        publish_folder(tmp, out, kind="export", label="OUT_DIR ")
    return out


def _export_scored(folder: Path, out: Path, heldout, repo_id: str | None) -> Path:
    """A scored policy exported: its head and record (small: no weights of the language model, which
    is named as the base and loaded from its own source), ``rearank_kit.json`` and a model card."""
    import shutil

    from rearank_kit.rank.scored import HEAD_FILE, SCORED_RECORD, load_scored_policy, trained_prompt

    policy = load_scored_policy(folder)
    prompt = trained_prompt(policy, folder / SCORED_RECORD)
    results = [heldout_summary(h) for h in heldout]
    record = scrub({
        "kind": "export", "family": "scored", "name": folder.name, "base_model": policy.model,
        "template": policy.prompt, "template_hash": policy.prompt_hash, "prompt_text": prompt.text,
        "passage_words": prompt.passage_words, "layers": list(policy.layers), "prior": policy.prior,
        "prior_weight": policy.prior_weight, "temperature": policy.temperature, "training": policy.record,
        "heldout": results,
    })  # fmt: skip
    with staged_folder(out) as tmp:
        for name in (SCORED_RECORD, HEAD_FILE):
            shutil.copyfile(folder / name, tmp / name)
        record["files"] = sorted([SCORED_RECORD, HEAD_FILE, "README.md", EXPORT_RECORD])
        write_json(tmp / EXPORT_RECORD, record)
        atomic_write_text(tmp / "README.md", scrub_text(model_card(record, results, repo_id=repo_id)))
        publish_folder(tmp, out, kind="export", label="OUT_DIR ")
    return out


def check_repo_id(repo_id: str) -> None:
    """Refuse a Hugging Face repository name the hub would refuse (``owner/name``), before any work."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise KitError(f"--push-to-hub {repo_id!r}: expected OWNER/NAME")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise KitError(f"--push-to-hub {repo_id!r}: {exc}") from None


def push_to_hub(run_dir: str | os.PathLike, repo_id: str, heldout: list[str | os.PathLike] = (), private: bool = False,
                api=None) -> str:
    """Export ``run_dir`` (merged weights, model card, ``rearank_kit.json``) and upload it to ``repo_id``.

    The folder uploaded is exactly what ``export_run`` writes, so the hub copy and a local export
    never differ. ``api``: a ``huggingface_hub.HfApi`` (default: a new one, using the saved token).
    """
    import tempfile

    check_repo_id(repo_id)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    with tempfile.TemporaryDirectory(prefix="rearank-kit-push-") as tmp:
        folder = export_run(run_dir, Path(tmp) / "model", heldout=heldout, repo_id=repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message=f"rearank-kit export of {Path(run_dir).name}")
    return f"https://huggingface.co/{repo_id}"


__all__ = ["export_run", "export_record", "model_card", "heldout_summary", "push_to_hub", "check_repo_id"]
