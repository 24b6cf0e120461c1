# %% [markdown]
# # 07 · GRPO from scratch: the objective in plain torch, a policy that learns in seconds, one real update
#
# Notebook 03 let TRL compute GRPO's loss. Here it is written out, term by term, and used to train a
# policy small enough to watch: a Plackett-Luce distribution over orderings of a set, scored by 4
# weights on simple passage features. Same reward as REARANK, same group sampling, same
# normalised advantages, same clipped ratio and KL; only the policy is tiny. Then the same loss
# takes one step on the real language model (the bundled SmolLM2-135M), and we watch what it does to
# each completion of a group.
#
# **What you will learn**
#
# - the GRPO objective: ratio, clipping, the KL estimator, and the four ways TRL averages the loss;
# - why, with one optimizer step per generation round, the clip never acts (and when it does);
# - how a listwise policy samples orderings (Plackett-Luce) and learns from group advantages;
# - what one GRPO step does to the probability of each completion of a real LLM's group;
# - to write the clipped loss yourself, checked against the kit's (which a test checks against TRL's).
#
# **Prerequisites**: notebook 02 (reward, group advantages); notebook 03 helps (presets, TRL).
# Basic torch: tensors, autograd, an optimizer step.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about 20 seconds (18 s measured; the LLM step is most of it) |
# | full | CPU, 2 cores | about 30 seconds (31 s measured); the from-scratch training itself takes seconds |
# | GPU | not needed | |

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from rearank_kit.course.notebook import benchmark_or_sample, describe_hardware, pick, run_folder

RUN = run_folder("07_grpo_from_scratch")  # the only folder this notebook writes to
torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and kind to shared machines
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. The objective, written out
#
# For one prompt, the policy as it is when the round begins (`pi_old`) samples a group of `G`
# completions `o_1 ... o_G`; each gets a reward `R_i` (notebook 02). For completion `i` and its
# token `t`:
#
# | term | definition | why |
# | --- | --- | --- |
# | advantage | `A_i = (R_i - mean(R)) / (std(R) + 1e-4)`, std with ddof=1 | better than the group's average: push up |
# | ratio | `r_it = pi_theta(o_it) / pi_old(o_it) = exp(logp_it - old_logp_it)` | how far the policy moved since sampling |
# | clipped surrogate | `min(r_it A_i, clip(r_it, 1-eps, 1+eps) A_i)` | PPO's brake: no gain from moving further than eps |
# | KL (k3) | `exp(ref - logp) - (ref - logp) - 1`, `ref` the reference policy | an unbiased, never negative KL estimate per token |
# | per-token loss | `L_it = -surrogate + beta * KL` | minimised by the optimizer |
#
# and the loss averages `L_it` over the real tokens (mask `m_it`) in one of TRL's ways (`loss_type`):
#
# | `loss_type` | average | effect |
# | --- | --- | --- |
# | `grpo` | mean over completions of each completion's token mean (the paper's Eq. 3) | a short completion's tokens weigh more |
# | `bnpo`, `dapo` | one token mean over the batch (`dapo`: the whole accumulated batch) | every token weighs the same |
# | `dr_grpo` | token sum / (completions x `max_completion_length`) | a constant: no length bias at all |
#
# `train/grpo.py`'s `grpo_loss` is all of this in 30 lines of torch; `tests/test_grpo_scratch.py` checks
# that it equals what TRL's `GRPOTrainer` computes on the same tensors, value and gradient, for each
# `loss_type`, with and without KL. A hand-made batch of 2 completions of 3 tokens:

# %%
from rearank_kit.train.grpo import grpo_loss, kl_k3

logps = torch.tensor([[-0.5, -1.0, -0.2], [-2.0, -0.1, -0.7]], requires_grad=True)
old = torch.tensor([[-0.7, -1.0, -0.2], [-1.5, -0.1, -0.9]])  # the policy at sampling time
ref = torch.tensor([[-0.6, -1.2, -0.3], [-1.8, -0.3, -0.7]])  # the reference (starting) policy
adv = torch.tensor([1.0, -1.0])
mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second completion has 2 real tokens
ratio = torch.exp(logps - old).detach()
display(pd.DataFrame({"ratio": ratio.flatten().tolist(), "advantage": adv.repeat_interleave(3).tolist(),
                      "clipped": [(r > 1.2 and a > 0) or (r < 0.8 and a < 0) for r, a in
                                  zip(ratio.flatten().tolist(), adv.repeat_interleave(3).tolist(), strict=True)],
                      "k3 KL": kl_k3(logps, ref).detach().flatten().tolist(), "mask": mask.flatten().tolist()},
                     index=pd.MultiIndex.from_product([["o_1", "o_2"], [1, 2, 3]], names=["completion", "token"])).round(3))
pd.DataFrame({lt: grpo_loss(logps, old, adv, mask, ref_logps=ref, beta=0.04, loss_type=lt)[0].item()
              for lt in ("grpo", "bnpo", "dr_grpo")}, index=["loss"]).round(4)

# %% [markdown]
# ## 2. One step per round: the clip never acts
#
# At the first optimizer step after sampling, `pi_theta` *is* `pi_old`: every ratio is exactly 1,
# inside `[1 - eps, 1 + eps]`, so the minimum picks the unclipped term and nothing is clipped. The
# gradient of `r_it A_i` at `r = 1` is `A_i grad logp_it` (since `grad r = r grad logp`): GRPO's
# first step is the plain policy gradient with the group mean as baseline. The clip can only act
# from the *second* step on the same samples, once the policy has moved: with TRL's
# `num_iterations > 1`, or several optimizer steps per generation round. The kit's `paper` preset
# takes one step per round (notebook 03), so there the clip is dead code. Checked numerically:

# %%
old_now = logps.detach()  # first step of a round: old == current
loss_first, stats = grpo_loss(logps, old_now, adv, mask, loss_type="grpo")
(g_grpo,) = torch.autograd.grad(loss_first, logps)
reinforce = -((adv.unsqueeze(1) * logps * mask).sum(1) / mask.sum(1)).mean()  # -A log p, same averaging
(g_pg,) = torch.autograd.grad(reinforce, logps)
print(f"first step: clipped share {stats['clip_fraction']}, ratios in [{stats['ratio_min']}, {stats['ratio_max']}]")
print("gradient of the clipped loss == policy gradient:", torch.allclose(g_grpo, g_pg))

# %% [markdown]
# ## 3. A tiny listwise policy
#
# A reranker's "completion" is an ordering of the set. The Plackett-Luce policy gives each passage a
# score `s_j = w . x_j` and builds an ordering pick by pick: the first passage with probability
# `softmax(s)`, the second among those left, and so on. Each pick is a "token" with log-probability
# `s_pick - logsumexp(s of the passages left)`: the picks of `G` orderings form exactly the `(G, n)`
# tensor of per-token log-probabilities an LLM produces, and go through the same loss.
#
# The features `x_j` of a passage (standardised within its set): its BM25 position in the set, the
# share of query words it contains, the same weighted by rarity in the set (IDF), and its length.
# The reward is the kit's normalised rank reward (notebook 02): 0 for the BM25 order, 1 for the
# best. The sets are augmented as in notebook 01: TREC DL21 with sets of 20 when available (the
# paper's setting), else the kit's sample with sets of 5.

# %%
from rearank_kit.course.grpo_scratch import FEATURES, PlackettLuce, sample_rewards, scratch_sets
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.train.augment import AugmentConfig, augment
from rearank_kit.train.grpo import group_advantages

DATA = pick(benchmark_or_sample("dl21"), "sample")
WINDOW = 5 if DATA == "sample" else 20
rows = augment(load_benchmark(DATA, top_k=100), AugmentConfig(samples_per_query=pick(20, 10), window=WINDOW,
                                                                 seed=0)).rows
sets = scratch_sets(rows)
train_sets = sets.select("train")
print(f"{DATA}: {len(sets)} sets of {WINDOW} ({len(train_sets)} train, {len(sets) - len(train_sets)} test)")
print("features of the first set's passages (standardised):")
pd.DataFrame(sets.features[0].numpy(), columns=FEATURES).round(2).assign(grade=sets.grades[0]).head(8)

# %%
from rearank_kit.course.plots import plot_group_advantages

policy = PlackettLuce()  # all weights 0: every ordering equally likely
G = 8
first = next(i for i, g in enumerate(train_sets.grades) if g != sorted(g, reverse=True))  # a set with room
perms = policy.sample(train_sets.features[first : first + 1], G, torch.Generator().manual_seed(0))
rewards = sample_rewards(train_sets, [first], perms, "normalized")
advantages = group_advantages(rewards, G)
print(f"one group of 8 random orderings of training set {first} (grades {train_sets.grades[first][:8]}...):")
for p, r, a in zip(perms[0].tolist(), rewards.tolist(), advantages.tolist(), strict=True):
    print(f"  {p[:8]}{' ...' if len(p) > 8 else ''}   reward {r:+.3f}   advantage {a:+.2f}")
group_ax = plot_group_advantages(rewards.tolist(), advantages.tolist())

# %% [markdown]
# ## 4. Train it
#
# Each round samples `G = 8` orderings of each of 16 training sets from the current policy, rewards
# them, normalises within each group, and takes one Adam step on `grpo_loss` (one step per round:
# on-policy, the clip never acts). Every `eval_every` rounds the policy's most likely ordering
# (passages by score) is scored on the training and the held-out test sets.

# %%
from rearank_kit.course.grpo_scratch import ScratchConfig, bm25_reward, train_scratch

CONFIG = ScratchConfig(rounds=pick(150, 40))
run = train_scratch(sets, CONFIG)
history = run.history
history.to_csv(RUN / "history.csv")
print(f"{len(history)} optimizer steps in {run.seconds:.1f} s; learned weights:",
      dict(zip(FEATURES, run.policy.w.detach().round(decimals=2).tolist(), strict=True)))
print(f"greedy reward on the test sets: {run.evaluations['test'].iloc[0]:+.3f} before, "
      f"{run.evaluations['test'].iloc[-1]:+.3f} after (BM25 order: {bm25_reward(sets.select('test')):+.3f})")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
axes[0].plot(history.index, history["reward"], alpha=0.35, label="sampled orderings (mean)")
axes[0].plot(history.index, history["reward"].rolling(10, min_periods=1).mean(), label="... rolling mean of 10")
axes[0].plot(run.evaluations["step"], run.evaluations["train"], "o-", label="greedy, train sets")
axes[0].plot(run.evaluations["step"], run.evaluations["test"], "s-", label="greedy, test sets")
axes[0].axhline(0, color="black", lw=0.7, ls="--", label="BM25 order (reward 0)")
axes[0].set(xlabel="optimizer step", ylabel="normalised rank reward", title="GRPO on a 4-weight listwise policy")
axes[0].legend(fontsize="small")
history[[f"w/{f}" for f in FEATURES]].plot(ax=axes[1], title="the policy's weights")
fig.tight_layout()
fig.savefig(RUN / "scratch_reward.png", dpi=100)

# %% [markdown]
# Random orderings start far below BM25's order (the reward is negative: shuffling a BM25 list
# makes it worse), and the policy climbs towards and, on the sample, past it within a few seconds.
#
# **What did it learn?** Read the weights, not a story about them: the cell below ranks the four
# features by the size of their learned weight. A policy learns whatever shortcut its data offers.
# On the bundled sample's sets (full mode) it leaned mostly on passage **length** (weights: BM25
# position 0.02, term overlap 0.49, IDF overlap -0.11, length 3.52): in that small collection the
# relevant passages happen to be the longer ones. On DL21's sets it leans on the BM25 position
# instead (3.62). Four numbers cannot read a passage, which is where a 7B model's gain over BM25
# comes from.

# %%
learned = sorted(zip(FEATURES, run.policy.w.detach().tolist(), strict=True), key=lambda fw: -abs(fw[1]))
print(f"on {DATA}, the weights by size:", ", ".join(f"{f} {w:+.2f}" for f, w in learned))
print("the feature it leans on most:", learned[0][0])
#
# ## 5. Several steps per round: now the clip acts
#
# The same training with 4 optimizer steps on each round's samples (TRL's `num_iterations=4`): the
# first step of each round clips nothing, the later ones do, as the policy moves away from `pi_old`.
# And with a KL penalty (`beta = 0.04`, against the starting policy) the weights are held back.

# %%
multi = train_scratch(sets, ScratchConfig(rounds=pick(60, 20), steps_per_round=4, learning_rate=0.2))
with_kl = train_scratch(sets, ScratchConfig(rounds=CONFIG.rounds, beta=0.04))
display(multi.history.groupby("inner_step")[["clip_fraction", "ratio_min", "ratio_max"]].mean().round(4)
        .rename_axis("step within the round"))
pd.DataFrame({
    "no KL": [run.history["reward"].iloc[-20:].mean(), run.policy.w.detach().norm().item(), run.history["kl"].iloc[-1]],
    "beta 0.04": [with_kl.history["reward"].iloc[-20:].mean(), with_kl.policy.w.detach().norm().item(),
                  with_kl.history["kl"].iloc[-1]],
}, index=["reward, last 20 steps", "size of the weights", "KL to the start, last step"]).round(3)

# %% [markdown]
# ## 6. Watch one GRPO update of a real language model
#
# The same loss on the bundled SmolLM2-135M: one augmented set as a `compact` prompt, a group of
# sampled completions, their rewards and advantages, each completion's log-probability before the
# step, one plain SGD step on the top 4 layers, and the log-probabilities again
# (`grpo_watch.watch_one_update`). Completions with a positive advantage should become more likely,
# those with a negative one less likely. The loss is `loss_type="dapo"`, the `cpu-tiny` preset's:
# every token weighs the same, so long completions carry more of the gradient. Completions share
# their first tokens ("2]" begins several), so one step moves them together, and a completion can
# move against its own advantage: the step follows the *sum* over the group. Exercise 4 switches to
# the paper's `loss_type="grpo"`, where each completion's tokens are averaged on their own.

# %%
from rearank_kit.course.grpo_watch import watch_one_update

watch_rows = augment(load_benchmark("sample", top_k=20), AugmentConfig(samples_per_query=5, window=5, seed=0)).rows
watch_row = max(watch_rows, key=lambda r: r["best_ndcg"] - r["init_ndcg"])  # a set with room to improve
watched = watch_one_update(watch_row, num_generations=pick(8, 4), max_new_tokens=pick(32, 12))
print(f"query {watch_row['query']!r}; loss {watched.loss:+.2e} before the step, {watched.loss_after:+.4f} after; "
      f"{watched.seconds:.0f} s")
watched.table.round(3)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(watched.table["advantage"], watched.table["per_token_change"], s=40)
ax.axhline(0, color="black", lw=0.7)
ax.axvline(0, color="black", lw=0.7)
ax.set(xlabel="advantage", ylabel="change in log-probability per token",
       title="One GRPO step: up where the advantage is positive")
fig.savefig(RUN / "one_update.png", dpi=100)

# %% [markdown]
# ## Exercises
#
# **A. Write the clipped GRPO loss (checked).** Arguments as in section 1: `(B, T)` tensors of
# per-token log-probabilities under the current, the sampling (`old`) and the reference policy,
# `(B,)` advantages and a `(B, T)` mask. Return the `loss_type="grpo"` loss (each completion's
# token mean, then the mean over completions) with the k3 KL term times `beta`, as a torch tensor
# that gradients flow through: the checker compares value *and* gradient with the kit's.

# %%
from rearank_kit.course.exercises import check_grpo_loss


def my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    """GRPO's clipped surrogate loss with a k3 KL penalty, averaged per completion, then over completions."""
    raise NotImplementedError  # your code here


check_grpo_loss(my_grpo_loss)

# %% [markdown]
# **Open questions**
#
# 1. Train the tiny policy with `ScratchConfig(scale="none")` (no division by the group's std) and
#    with `loss_type="dr_grpo"`. Which learns faster here, and why could it differ on an LLM?
# 2. In section 5, raise `learning_rate` to 1.0: what happens to the clipped share of the later
#    steps, and to the reward? What is the clip protecting against?
# 3. Give the policy one more feature that reads the grades (a cheat). How fast does it reach
#    reward 1? What does that say about the reward signal versus what the features can express?
# 4. In section 6, run `watch_one_update(..., loss_type="grpo")`. Which completions move most now?
#    Relate it to the table of loss types (Dr. GRPO's argument against per-completion averaging).
# 5. (Teachers) Ask students to prove, from the definition, that the gradient of the clipped
#    surrogate at `r = 1` is `A grad log p`, then to predict the clipped share of section 5.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. What is the probability ratio pi_theta / pi_old at the first optimizer step of a round, and so how much does the clip act there?
# 2. How many rankings of 5 passages does the exact expected reward sum over?
# 3. What do a group's normalised advantages add up to?

# %% [markdown]
# ## Recap
#
# - GRPO's loss: the PPO-clipped ratio times the group-normalised advantage, plus `beta` times a k3
#   KL estimate, averaged over tokens in one of four ways (`loss_type`).
# - At the first step after sampling the ratio is 1: the clip does nothing and the gradient is the
#   plain policy gradient; the clip only acts when samples are reused for more steps.
# - A Plackett-Luce policy makes orderings out of picks, so a 4-weight reranker trains with exactly
#   the loss an LLM does, in seconds, and climbs from random orderings to near BM25's.
# - On a real LLM, one step makes the above-average completions of a group more likely, by an
#   amount that depends on the advantage, the learning rate and the loss's length averaging.
# - Next: notebook 08 asks whether a reasoning reranker's words follow its ranking.
