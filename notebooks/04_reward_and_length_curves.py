# %% [markdown]
# # 04 · Reward and length curves: reading a GRPO run
#
# A GRPO run can look busy and learn nothing: the loss of GRPO is not a measure of progress (it is
# close to zero by construction, since advantages average to zero), so the curves to watch are the
# reward and the signals that explain it. REARANK's paper reports the reward rising and the
# reasoning growing longer (to about 850 tokens with its normalised reward, `paper.reference_lines`);
# this notebook shows how to draw those curves and how to read them.
#
# **What you will learn**
#
# - what each logged metric means: the reward (mean, spread within groups, each component), the share
#   of groups with zero reward spread, the completion length and the share clipped at the limit, KL;
# - how to read one run, overlay several, and smooth noisy curves (EMA, rolling mean);
# - how to recognise the failure patterns (a run that learns nothing, truncated reasoning, a runaway
#   policy, a collapsing length) and what to change, with `curves.diagnose`;
# - to look below the means: every completion's reward per step, and the paper's own curves.
#
# **Prerequisites**: notebooks 02 (reward, advantages, zero-spread groups) and 03 (what a run
# folder holds). Notebook 03 need not have run: the reference run is committed.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU | seconds (8 s measured) |
# | full | CPU | seconds (9 s measured) |
# | GPU | not needed | |
#
# The curves come from the reference runs committed with the kit: the generative policy's
# (`data/runs/cpu-firstpick-dl21/metrics.jsonl`: the `cpu-firstpick` recipe, 60 steps on TREC DL21
# sets; it did not learn) and the scored policy's (`data/runs/scored-grpo-dl21`: it did, a little),
# and, when notebook 03 has run, from the fresh run it wrote. A `metrics.jsonl` from a GPU run reads
# the same.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rearank_kit.course.notebook import REPO_ROOT, describe_hardware, run_folder

RUN = run_folder("04_reward_and_length_curves")  # the only folder this notebook writes to
REFERENCE = REPO_ROOT / "data" / "runs" / "cpu-firstpick-dl21"
FRESH = RUN.parent / "03_grpo_training" / "grpo"  # notebook 03's run folder (read only)
SMOOTH = 0.6  # EMA weight used for every smoothed curve below (section 4 explains it)
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. Load the runs
#
# `load_curves` reads a `metrics.jsonl` (or TRL's `trainer_state.json`, or a checkpoint folder) into
# one row per step, with TRL's column names. A last line cut by an interrupted run is skipped.

# %%
from rearank_kit.analysis.curves import load_curves, reward_components

runs = {"reference (cpu-firstpick, dl21)": load_curves(REFERENCE / "metrics.jsonl")}
if (FRESH / "metrics.jsonl").is_file():
    runs["fresh (notebook 03)"] = load_curves(FRESH)
else:
    print("notebook 03 has not written a run yet: showing the reference run only")
for name, df in runs.items():
    print(f"{name}: {len(df)} logged steps, reward components {reward_components(df)}")
ref = runs["reference (cpu-firstpick, dl21)"]
MAIN = ["reward", "reward_std", *[f"rewards/{fn}/mean" for fn in reward_components(ref)], "frac_reward_zero_std",
        "completions/mean_length", "completions/clipped_ratio", "kl", "loss", "step_time"]
ref[[c for c in MAIN if c in ref.columns]].head()

# %% [markdown]
# The reference run comes with a README that says how it was made and what happened in it:

# %%
print((REFERENCE / "README.md").read_text(encoding="utf-8") if (REFERENCE / "README.md").is_file()
      else "(no README beside the reference run)")

# %% [markdown]
# ## 2. What each curve says
#
# | column | meaning | healthy |
# | --- | --- | --- |
# | `reward` | mean total reward of the step's completions | rises, then levels off |
# | `reward_std` | spread of rewards *within* groups | stays above 0: GRPO learns from differences |
# | `rewards/<fn>/mean` | each component: rank, the two formats | format near 1 early, rank rising |
# | `frac_reward_zero_std` | share of groups whose completions all got the same reward | low: such groups teach nothing |
# | `completions/mean_length` | mean completion length in tokens | stable, or a slow rise |
# | `completions/clipped_ratio` | share cut at `max_completion_length` | near 0: a cut reply has no answer |
# | `kl` | distance from the starting model (only with `beta > 0`) | small, slowly rising |
#
# The reward panel draws the mean with a band of plus or minus `reward_std`, and each component.
# A run trained with `beta = 0` (the CPU presets: no reference model, to save memory) computes
# no KL, so its KL panel is left out below rather than drawn empty; the GPU presets use the
# paper's `beta = 0.01` and get one. The paper's own curves exist only as figures: the dotted
# purple lines are what it reports for a 7B model (`paper.reference_lines`), a scale to read ours
# against, not a target for a 135M model.

# %%
import json

from rearank_kit.analysis.curves import add_reference_lines, plot_kl, plot_length, plot_reward, plot_zero_std
from rearank_kit.evaluation.paper import reference_lines

ref_config = json.loads((REFERENCE / "manifest.json").read_text(encoding="utf-8")).get("config", {})
BETA, MODE = ref_config.get("beta", 0.0), ref_config.get("reward_mode", "normalized")
PAPER_LINES = reference_lines(MODE)
panels = [plot_reward, plot_length, plot_zero_std] + ([plot_kl] if BETA or "kl" in ref.columns else [])
fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4))
for ax, draw in zip(axes, panels, strict=True):
    draw(ref, ax=ax)
add_reference_lines(axes[0], PAPER_LINES.get("reward", []))
add_reference_lines(axes[1], PAPER_LINES.get("completions/mean_length", []))
fig.tight_layout()
print(f"beta = {BETA}: " + ("no KL logged, no KL panel" if len(panels) == 3 else "KL panel drawn"))

# %% [markdown]
# ## 3. Learning or noise? The curve against a no-learning band
#
# A reward curve that wiggles upwards proves little: each step sees different sets, and 10 prompts
# a step (the preset draws 2 sets, each shown in its 5 rotations) give a noisy mean. To tell learning from noise, ask what the curve would look like if
# *nothing* were learned. For the reference run this question has an exact answer: its policy picks
# one passage (a one-token reply), so for every step we can take the untrained model's
# probabilities of each first pick on that step's very sets, sample the same number of picks
# thousands of times, and see where a step's mean rank reward falls without learning
# (`first_pick.no_learning_band`, committed beside the run as `no_learning_band.jsonl`). The grey
# band holds 90% of such steps; the grey line is their expectation.
#
# Read it like this: a run that learned sits *above* the band more and more often as it goes, not
# once. The last quarter's mean against the first quarter's is the summary the kit reports; the
# held-out comparison (notebook 05) is the proof, since these are training sets.

# %%
from rearank_kit.analysis.curves import add_no_learning_band, ema, quarter_means
from rearank_kit.core.files import iter_jsonl

RANK = "rewards/rank_reward/mean"
band = list(iter_jsonl(REFERENCE / "no_learning_band.jsonl"))
fig, ax = plt.subplots(figsize=(10, 4))
add_no_learning_band(ax, band)
ax.plot(ref.index, ref[RANK], color="tab:blue", alpha=0.35, linewidth=0.8, label="trained run, per step")
ax.plot(ref.index, ema(ref[RANK], weight=0.9).values, color="tab:blue", label="trained run, EMA 0.9")
ax.axhline(0, color="black", linewidth=0.5)
ax.set(xlabel="step", ylabel="rank reward (nDCG@10 gain)", title="reference run against the untrained model")
ax.legend(fontsize="x-small")
above = np.mean([r > b["q95"] for r, b in zip(ref[RANK], band, strict=False)])
first, last = quarter_means(ref[RANK])
base_first, base_last = quarter_means(pd.Series([b["expected"] for b in band]))
print(f"steps above the band: {above:.0%} (5% expected without learning)")
print(f"rank reward, first quarter {first:+.4f}, last quarter {last:+.4f} "
      f"(untrained on the same sets: {base_first:+.4f}, {base_last:+.4f})")

# %% [markdown]
# ### The same test on a run that learns: the scored policy
#
# The kit's second policy family (notebook 03) trains a head on the same model's hidden states with
# the same reward. Its reference run (`data/runs/scored-grpo-dl21`, the model trained on all 53 DL21
# queries with the setting the folds chose) logs the same columns. Its no-learning band is built the
# same way: the untrained policy (BM25's order, sampled at the run's temperature) on each step's very
# sets, thousands of times (`scored.no_learning_band`). Four panels: the step reward (the nDCG@10
# gain of the sampled rankings over each set's given order) against the band, the spread of rewards
# within groups (what GRPO learns from), the KL from the starting policy (how far the head has moved
# it) and the entropy of the sampled rankings (how much it still explores; a uniform ranking of 20
# passages would be log 20! = 42.3 nats). Beside it, the generative run's rank reward against its band.

# %%
SCORED = REPO_ROOT / "data" / "runs" / "scored-grpo-dl21"
scored = load_curves(SCORED / "final" / "metrics.jsonl")
scored_band = list(iter_jsonl(SCORED / "final" / "no_learning_band.jsonl"))
fig, axes = plt.subplots(1, 5, figsize=(26, 4))
add_no_learning_band(axes[0], scored_band, label="untrained policy")
axes[0].plot(scored.index, scored["reward"], color="tab:green", alpha=0.35, linewidth=0.8, label="per step")
axes[0].plot(scored.index, ema(scored["reward"], weight=0.9).values, color="tab:green", label="EMA 0.9")
axes[0].set(title="scored policy: step reward", xlabel="step", ylabel="nDCG@10 gain of the sampled rankings")
axes[0].legend(fontsize="x-small")
for ax, column, title in zip(axes[1:4], ["reward_std", "kl", "entropy"],
                             ["reward spread within groups", "KL to the start policy (nats)", "entropy of the rankings (nats)"],
                             strict=True):
    ax.plot(scored.index, scored[column], color="tab:green", alpha=0.5)
    ax.set(title=title, xlabel="step")
add_no_learning_band(axes[4], band)
axes[4].plot(ref.index, ema(ref[RANK], weight=0.9).values, color="tab:blue", label="generative run, EMA 0.9")
axes[4].set(title="generative policy: rank reward", xlabel="step")
axes[4].legend(fontsize="x-small")
fig.tight_layout()
above_scored = np.mean([r > b["q95"] for r, b in zip(scored["reward"], scored_band, strict=False)])
s_first, s_last = quarter_means(scored["reward"])
print(f"scored policy: steps above the band {above_scored:.0%}; step reward, first quarter {s_first:+.4f}, "
      f"last quarter {s_last:+.4f}")
print("generative policy: steps above the band", f"{above:.0%}")

# %% [markdown]
# ## 4. Smoothing
#
# With a few prompts per step (eight in the CPU recipe, one in `cpu-tiny`) the reward jumps from
# step to step: each step sees different sets, some easy, some hard. Smooth before judging a trend, but keep the raw line in view.
# The exponential moving average is TensorBoard's (`SMOOTH` = 0.6, a memory of a few steps); the
# rolling mean averages the last `window` steps.

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4), sharey=True)
plot_reward(ref, ax=axes[0], components=False)
plot_reward(ref, ax=axes[1], components=False, smooth=SMOOTH)
plot_reward(ref, ax=axes[2], components=False, window=5)
for ax, title in zip(axes, ["raw", f"EMA, weight {SMOOTH}", "rolling mean of 5 steps"], strict=True):
    ax.set_title(title)
fig.tight_layout()

# %% [markdown]
# ## 5. All panels, several runs
#
# `plot_dashboard` draws the six panels with one colour per run: overlay a fresh run on the reference,
# or the runs of an ablation (e.g. the three reward modes of notebook 02). Then save it, with a
# manifest beside the PNG saying which runs and which smoothing made it.

# %%
from rearank_kit.analysis.curves import PANELS, plot_dashboard, save_figure

logs_kl = any("kl" in df.columns and df["kl"].notna().any() for df in runs.values())
dashboard = plot_dashboard(runs, smooth=SMOOTH, reference_lines=PAPER_LINES,
                           panels=None if logs_kl else [p for p in PANELS if p != "kl"])
save_figure(dashboard, RUN / "dashboard.png", {"runs": {name: df.attrs.get("source") for name, df in runs.items()},
                                              "smooth": SMOOTH})

# %% [markdown]
# ### Below the mean: every completion
#
# `reward` and `reward_std` are averages. `completions.jsonl` keeps every completion's reward, so
# each step's groups can be seen whole: a dot per completion, a bar per group's range. A step whose
# groups are single points (red cross) has zero spread: every completion got the same reward, every
# advantage is 0, and the step changed nothing. (The reference run keeps the 400 completions of
# steps 1, 2, 30, 59 and 60; a fresh run from notebook 03 keeps all of them.)

# %%
from rearank_kit.course.plots import plot_reward_spread, reward_spread

COMPLETIONS = FRESH / "completions.jsonl" if (FRESH / "completions.jsonl").is_file() \
    else REFERENCE / "completions_sample.jsonl"
spread_ax = plot_reward_spread(COMPLETIONS)
spread = reward_spread(COMPLETIONS)
print(f"{COMPLETIONS.name}: {len(spread)} groups, {int((spread['max'] - spread['min'] < 1e-9).sum())} with zero spread")

# %% [markdown]
# ## 6. Failure patterns
#
# Four ways a GRPO run goes wrong, as made-up curves (30 steps) so that each pattern is plain:
#
# - **learns nothing**: every group's completions get the same reward (`frac_reward_zero_std` = 1),
#   so every advantage is 0. Typical causes: temperature too low, groups too small, sets whose order
#   cannot be improved, or a parser that reads every reply as the same ranking. The reward then sits
#   at the *format floor*, 0.2: what a well-formatted reply that changes nothing earns;
# - **truncated reasoning**: the reasoning grows until most completions hit `max_completion_length`
#   (clipped ratio near 1): no `<answer>`, no rank reward;
# - **runaway policy**: KL grows without bound, usually a learning rate too high or `beta` too low;
# - **collapsing length**: the model learns to drop its reasoning (an empty `<think>`), which can
#   still earn format rewards.

# %%
steps = pd.RangeIndex(1, 31, name="step")
t = np.linspace(0, 1, len(steps))
rng = np.random.default_rng(0)
noise = rng.normal(0, 0.02, len(steps))
healthy = {"reward": 0.25 + 0.45 * t + noise, "reward_std": 0.3 - 0.1 * t, "frac_reward_zero_std": 0.2 - 0.1 * t,
           "completions/mean_length": 300 + 40 * t, "completions/clipped_ratio": 0.02 + 0 * t, "kl": 0.02 * t,
           "rewards/rank_reward/mean": 0.1 + 0.5 * t, "rewards/format_think_answer_reward/mean": 0.8 + 0.2 * t,
           "rewards/format_answer_reward/mean": 0.9 + 0.1 * t}
patterns = {
    "healthy": pd.DataFrame(healthy, index=steps),
    "learns nothing": pd.DataFrame({**healthy, "reward": 0.2 + 0 * t, "reward_std": 0 * t,
                                    "frac_reward_zero_std": 1 + 0 * t, "rewards/rank_reward/mean": 0 * t,
                                    "rewards/format_think_answer_reward/mean": 1 + 0 * t,
                                    "rewards/format_answer_reward/mean": 1 + 0 * t}, index=steps),
    "truncated reasoning": pd.DataFrame({**healthy, "reward": 0.3 - 0.2 * t + noise,
                                         "completions/mean_length": 900 + 1100 * t,
                                         "completions/clipped_ratio": 0.05 + 0.85 * t}, index=steps),
    "runaway policy": pd.DataFrame({**healthy, "kl": 0.01 * np.exp(6 * t)}, index=steps),
    "collapsing length": pd.DataFrame({**healthy, "completions/mean_length": 400 * (1 - 0.9 * t)}, index=steps),
}
patterns_fig = plot_dashboard(patterns, smooth=0.0)

# %%
from rearank_kit.analysis.curves import diagnose

for name, df in patterns.items():
    findings = diagnose(df)
    print(f"== {name}: {len(findings)} finding(s)")
    for finding in findings:
        print("  -", finding)

# %% [markdown]
# ## 7. Diagnose the real runs
#
# The same checks on the reference run and, if present, the fresh one. A run of a few steps is too
# short to judge, and `diagnose` says so. Do not expect the tiny preset to pass: it trains a 135M
# model for a few dozen steps to exercise the pipeline, not to make a reranker, and its curves show
# real failure patterns. Match each finding with the panels above, then read the completions
# (exercise 4) to see what the model actually wrote.

# %%
for name, df in runs.items():
    print(f"== {name}")
    for finding in diagnose(df) or ["no failure pattern found"]:
        print("  -", finding)

# %% [markdown]
# ## Exercises
#
# 1. Change `SMOOTH` from 0.6 to 0.95. What trend appears that is not in the
#    raw data? When does smoothing mislead?
# 2. Make the "healthy" curves of section 6 fail `diagnose` with as small a change as you can. Which
#    threshold of `diagnose` did you cross?
# 3. Train notebook 03's `cpu-firstpick` run twice, with its `reward_mode="difference"` and with
#    `"raw"`, and overlay the two runs here. Which curves differ, by how much, and why do the
#    updates not (notebook 02, section 4)?
# 4. In the reference run, at which steps is `frac_reward_zero_std` highest? (It never reaches 1
#    there: print its maximum.) Look up completions of such steps in `completions_sample.jsonl`
#    beside the reference run (or in the `completions.jsonl` of your own run; notebook 03 shows how
#    to read it) and explain why every completion of such a group got the same reward.
# 5. (Teachers) Show students only the dashboard of a run and ask them to predict what its
#    completions look like.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. In the generative reference run, what was the highest share of zero-spread groups in a step (`frac_reward_zero_std`)?
# 2. What share of the scored reference run's steps lie above the 95th percentile of its no-learning band?
# 3. By how many standard errors did the scored final run's step reward rise from its first quarter to its last?

# %% [markdown]
# ## Recap
#
# - GRPO's loss says nothing about progress; read the reward (mean, spread, components), the share
#   of zero-spread groups, the completion length and clipped share, and the KL when `beta > 0`.
# - Smooth noisy curves (EMA, rolling mean) but keep the raw line: smoothing can invent trends.
# - `completions.jsonl` shows what the means hide: a group whose completions all earn the same
#   reward teaches nothing.
# - `diagnose` names the failure patterns: no spread, truncated reasoning, a runaway KL, a
#   collapsing or drifting length, a reward stuck at the format floor.
# - The paper's curves are 7B-scale reference lines, not targets for a CPU run.
# - Next: notebook 05 evaluates rerankers on TREC DL.
