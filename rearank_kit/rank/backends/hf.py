"""The transformers backend: ``model.generate`` in left-padded micro-batches, on CPU or CUDA.

Prompts are rendered with the tokenizer's chat template (``render_chat``), tokenized without
extra special tokens, sorted by length (longest first, so that a too-large batch fails early and
padding stays small) and cut into micro-batches of ``config.batch_size``; results come back in
input order. Greedy decoding when ``temperature == 0``.

Batching does not change greedy output: with left padding, the attention mask and the position
ids transformers derives from it, the bundled model (fp32, CPU) gives the same text batched and
one prompt at a time, with the default ``sdpa`` attention and with ``eager`` alike
(``tests/test_backends.py``). Sampling is seeded inside ``torch.random.fork_rng``, so the
caller's random state is left as it was.

On a small shared CPU, torch's OpenMP threads can stall each other when other processes compete
for the cores (BENCHMARKS.md, "Threads on a busy CPU"); set the thread count to what is really free.
"""

from __future__ import annotations

from typing import Any

from rearank_kit.rank.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationConfig,
    cut_at_stop,
)


class HFBackend(Backend):
    """Generation with transformers.

    Either load a model (``model``: preset name, folder or hub id; ``device``; ``dtype``;
    ``attn_implementation``) or wrap one already in memory with ``HFBackend.from_model``
    (e.g. a policy being trained). ``device`` "auto" (the default) is the GPU when one is
    visible, else the CPU (``models.resolve_device``); "cpu", "cuda" or "cuda:N" choose.
    """

    name = "hf"

    def __init__(
        self,
        model: str = "smollm2-135m",
        device: str = "auto",
        dtype: Any = None,
        attn_implementation: str | None = None,
        *,
        _loaded: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__(str(model))
        if _loaded is None:
            from rearank_kit.rank.policy import load_hf_model

            _loaded = load_hf_model(model, device=device, dtype=dtype, attn_implementation=attn_implementation)
        self.model, self.tokenizer = _loaded
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._owns_model = True

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, model_id: str = "in-memory") -> HFBackend:
        """Wrap a model and tokenizer already loaded; ``close()`` will not delete them."""
        backend = cls(model_id, _loaded=(model, tokenizer))
        backend._owns_model = False
        return backend

    @property
    def device(self) -> Any:
        return self.model.device

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(int(i) for i in gen_eos)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return ids

    def _generate_kwargs(self, config: GenerationConfig, eos_ids: set[int]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": sorted(eos_ids) or None,
        }
        if config.greedy:
            # Unset the model's own sampling defaults so that transformers does not warn about them.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
            kwargs["top_k"] = config.top_k_or_none or 0  # 0 disables top-k in transformers
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        return kwargs

    def _generate(
        self, conversations: list[Conversation], config: GenerationConfig, prefill: str | None
    ) -> list[Generation]:
        import torch

        encoded = [self.encode(conv, prefill) for conv in conversations]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        eos_ids = self._eos_ids()
        kwargs = self._generate_kwargs(config, eos_ids)
        results: list[Generation | None] = [None] * len(encoded)
        pad_id = self.tokenizer.pad_token_id
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        # fork_rng: seeding for this call does not disturb the caller's global random state.
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(config.seed)
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                width = max(len(encoded[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):  # LEFT padding: the prompts end where generation starts
                    ids = encoded[i]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention[row, width - len(ids) :] = 1
                out = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **kwargs
                )
                new_tokens = out[:, width:].tolist()
                for row, i in enumerate(batch):
                    results[i] = self._to_generation(new_tokens[row], len(encoded[i]), config, prefill, eos_ids)
        return [r for r in results if r is not None]

    def _to_generation(
        self, tokens: list[int], prompt_len: int, config: GenerationConfig, prefill: str | None, eos_ids: set[int]
    ) -> Generation:
        """Trim the padding after the end of a row and decide why it finished.

        A row that stopped on an eos token is followed by pad tokens (often the same id as eos):
        the tokens are kept up to and including the first eos. A row stopped by a stop string is
        padded too; when pad differs from eos that padding is dropped here.
        """
        end = next((k + 1 for k, t in enumerate(tokens) if t in eos_ids), None)
        hit_eos = end is not None
        if end is None:
            end = len(tokens)
            pad_id = self.tokenizer.pad_token_id
            while end > 0 and tokens[end - 1] == pad_id and pad_id not in eos_ids:
                end -= 1
        tokens = tokens[:end]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        text, hit_stop = cut_at_stop(text, config.stop)
        finish = "stop" if hit_eos or hit_stop or len(tokens) < config.max_new_tokens else "length"
        return Generation(
            text=(prefill or "") + text, prompt_tokens=prompt_len, output_tokens=len(tokens), finish_reason=finish
        )

    def close(self) -> None:
        if getattr(self, "model", None) is None:
            return
        on_cuda = self.device.type == "cuda"
        self.model = None
        self.tokenizer = None
        if self._owns_model:
            import gc

            gc.collect()
            if on_cuda:
                import torch

                torch.cuda.empty_cache()
