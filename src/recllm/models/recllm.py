"""RecLLM-Adapter: RecAdapter tokens -> LM backbone (causal) -> catalogue ranking.

``forward`` returns per-position ranking queries and, given targets, the
recommendation loss; scoring the whole catalogue for the last position of each
sequence is :meth:`RecLLMModel.score_last`. The model never trains itself: the loop in
:mod:`recllm.recipes.train` owns optimisation, checkpoints and logging.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from recllm.errors import ConfigError
from recllm.models.adapter.config import WEIGHTS_NAME, AdapterConfig
from recllm.models.adapter.model import CatalogueTables, RecAdapter
from recllm.models.backbone import Backbone
from recllm.models.item_encoder import ItemEncodings, texts_sha256
from recllm.models.sequential import RecOutput, SequenceModelMixin

BACKBONE_WEIGHTS_NAME = "backbone_trainable.safetensors"


def catalogue_hash(texts: list[str]) -> str:
    """Identity of a catalogue: the hash of its item texts in order (the same hash the
    item encodings record, so a model can be checked against encodings alone)."""
    return texts_sha256(texts)[:16]


class RecLLMModel(SequenceModelMixin, nn.Module):
    """Backbone + RecAdapter + ranking head over a fixed catalogue of N items.

    Args:
        backbone: the language model (frozen, LoRA or fully trainable).
        encodings: cached metadata embeddings of the N catalogue items.
        config: adapter configuration; catalogue and backbone fields are filled in.
    """

    pooled: torch.Tensor  # (N + 1, H_meta), last row padding
    meta_tokens: torch.Tensor  # (N + 1, M, H_meta)
    meta_mask: torch.Tensor  # (N + 1, M)
    prompt_ids: torch.Tensor  # (P,) instruction prompt tokens, empty without a prompt

    def __init__(self, backbone: Backbone, encodings: ItemEncodings, config: AdapterConfig) -> None:
        super().__init__()
        n_items = encodings.pooled.shape[0]
        config.n_items = n_items
        config.meta_dim = encodings.pooled.shape[1]
        config.n_meta_tokens = encodings.tokens.shape[1]
        config.backbone_hidden = backbone.hidden_size
        config.backbone = config.backbone or backbone.base_fingerprint()
        self.config = config
        self.backbone = backbone
        self.adapter = RecAdapter(config)
        self.adapter.fit_text(encodings.pooled)  # weights loaded later (from_pretrained) replace it
        # Metadata lives in buffers with a zero padding row at index N (not saved with
        # the adapter: it is recomputed from the backbone and the item texts, or cached).
        pad_pooled = torch.zeros(1, config.meta_dim)
        pad_tokens = torch.zeros(1, *encodings.tokens.shape[1:])
        self.register_buffer(
            "pooled", torch.cat([encodings.pooled.float(), pad_pooled]), persistent=False
        )
        self.register_buffer(
            "meta_tokens", torch.cat([encodings.tokens.float(), pad_tokens]), persistent=False
        )
        pad_mask = torch.zeros(1, encodings.token_mask.shape[1], dtype=torch.bool)
        self.register_buffer(
            "meta_mask", torch.cat([encodings.token_mask.bool(), pad_mask]), persistent=False
        )
        self.register_buffer("prompt_ids", self._tokenize_prompt(config.prompt), persistent=False)
        self._training_items: torch.Tensor | None = None
        self._tables: CatalogueTables | None = None

    def _tokenize_prompt(self, prompt: str) -> torch.Tensor:
        """Token ids of the instruction prompt (no special tokens); empty if none."""
        if not prompt:
            return torch.zeros(0, dtype=torch.long)
        if self.backbone.tokenizer is None:
            raise ConfigError("adapter.prompt needs a backbone with a tokenizer; this one has none")
        ids = self.backbone.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ConfigError(f"adapter.prompt {prompt!r} tokenizes to nothing")
        return torch.tensor(ids, dtype=torch.long)

    @property
    def training_items(self) -> torch.Tensor | None:
        """Item ids a training loss may score (None: all). Setting it also tells the
        adapter which items will have trained IDs (see ``AdapterConfig.missing_id``)."""
        return self._training_items

    @training_items.setter
    def training_items(self, items: torch.Tensor | None) -> None:
        self._training_items = items
        self.adapter.mark_trained_ids(items)

    def train(self, mode: bool = True) -> RecLLMModel:
        super().train(mode)
        if mode:
            self._tables = None  # weights are about to change
        if self.backbone.config.finetune == "frozen":
            self.backbone.eval()  # a frozen feature extractor runs without dropout
        return self

    def cache_catalogue(self) -> RecLLMModel:
        """For serving: compute the catalogue's item embeddings and projected metadata
        tokens once, not on every request (a request then costs only its own history).
        Switches to eval mode; ``train()`` drops the tables."""
        self.eval()
        self._tables = self.adapter.catalogue_tables(self.pooled, self.meta_tokens)
        return self

    @torch.no_grad()
    def update_items(self, codes: torch.Tensor, encodings: ItemEncodings) -> None:
        """Set the metadata of the items ``codes`` from ``encodings`` (one row each), for
        catalogue updates without retraining. Codes from ``n_items`` on are new items and
        grow the catalogue (they must follow on without gaps); a new item has no trained
        ID (zero, or the learned stand-in), so it is scored as a cold-start item is."""
        codes = codes.long()
        n_new = max(int(codes.max()) + 1 - self.n_items, 0) if len(codes) else 0
        if n_new:
            self._grow(n_new)
        self.pooled[codes] = encodings.pooled.float()
        self.meta_tokens[codes] = encodings.tokens.float()
        self.meta_mask[codes] = encodings.token_mask.bool()
        if self._tables is not None:
            self.cache_catalogue()

    def _grow(self, n_new: int) -> None:
        """Append ``n_new`` empty items before the padding row."""
        n = self.n_items

        def grown(table: torch.Tensor) -> torch.Tensor:  # (N + 1, ...) -> (N + n_new + 1, ...)
            empty = torch.zeros(n_new, *table.shape[1:], dtype=table.dtype)
            return torch.cat([table[:n], empty, table[n:]])

        self.pooled = grown(self.pooled)
        self.meta_tokens = grown(self.meta_tokens)
        self.meta_mask = grown(self.meta_mask)
        if self.adapter.has_id is not None:  # a new item has no trained ID
            self.adapter.has_id = grown(self.adapter.has_id)
        if self.adapter.item_age is not None:  # a new item is the newest
            self.adapter._grow_item_ages(n_new)
        if self.adapter.item_ids is not None:
            weight = grown(self.adapter.item_ids.weight.detach())  # (N + n_new + 1, d_ids)
            self.adapter.item_ids = torch.nn.Embedding.from_pretrained(
                weight, freeze=False, padding_idx=n + n_new
            )
        self.config.n_items = n + n_new
        self.adapter.pad_id = n + n_new

    def item_embeddings(self) -> torch.Tensor:
        """(N, d) embeddings of the catalogue (padding row dropped)."""
        if self._tables is not None:
            return self._tables.items[: self.n_items]
        return self.adapter.item_embeddings(self.pooled)[: self.n_items]

    def forward(
        self,
        items: torch.Tensor,
        weights: torch.Tensor,
        mask: torch.Tensor,
        targets: torch.Tensor | None = None,
        loss: str = "bpr",
        n_negatives: int = 1,
        generator: torch.Generator | None = None,
        output_attentions: bool = False,
    ) -> RecOutput:
        """Queries for next-item prediction at every position; loss when ``targets``.

        ``items``/``weights``/``mask``/``targets``: (B, L), right-padded with
        ``pad_id`` and ``mask == False``. ``output_attentions``: also return the
        backbone's attention maps (prompt positions first, when there is a prompt).
        """
        if items.numel() and int(items.max()) > self.pad_id:
            raise ValueError(
                f"item id {int(items.max())} is outside the catalogue of {self.n_items} items"
            )
        # The catalogue's embeddings once per call: the input steps and the loss share them
        # (in training they are recomputed each step, as their weights change).
        tables = self._tables
        if tables is None:
            tables = CatalogueTables(self.adapter.item_embeddings(self.pooled), meta_tokens=None)
        encoded = self.adapter.encode(
            items, weights, mask, self.pooled, self.meta_tokens, self.meta_mask, tables
        )
        hidden, maps = self._run_backbone(encoded.tokens, mask, output_attentions)  # (B, L, H)
        queries = self.adapter.query(hidden, encoded.user)
        output = RecOutput(
            queries=queries,
            user=encoded.user,
            attention=encoded.attention,
            backbone_attentions=maps,
        )
        if targets is not None:
            output.loss = self.ranking_loss(
                loss, queries, targets, mask, n_negatives, generator, tables.items[: self.n_items]
            )
            weight = self.config.text_alignment
            if weight and self.training:
                output.loss = output.loss + weight * self.adapter.alignment_loss(
                    targets[mask], self.pooled
                )
        return output

    def _run_backbone(
        self, tokens: torch.Tensor, mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Backbone states of the adapter tokens (after the prompt prefix if there is
        one), and the attention maps over prompt + adapter tokens if asked."""
        n_prompt = len(self.prompt_ids)
        run = self.backbone.forward_with_attentions if output_attentions else None
        if not n_prompt:
            if run is not None:
                return run(tokens, mask, causal=True)
            return self.backbone.forward_embeddings(tokens, mask, causal=True), None
        batch = tokens.shape[0]
        prefix = self.backbone.embed_tokens(self.prompt_ids.unsqueeze(0)).expand(
            batch, -1, -1
        )  # (B, P, H)
        full_mask = torch.cat(
            [torch.ones(batch, n_prompt, dtype=mask.dtype, device=mask.device), mask], 1
        )
        inputs = torch.cat([prefix.to(tokens.dtype), tokens], 1)
        if run is not None:
            hidden, maps = run(inputs, full_mask, causal=True)
            return hidden[:, n_prompt:], maps
        hidden = self.backbone.forward_embeddings(inputs, full_mask, causal=True)
        return hidden[:, n_prompt:], None

    def save_pretrained(self, folder: Path, state: dict[str, torch.Tensor] | None = None) -> None:
        """Adapter config + weights (and trainable backbone weights, if any).

        ``state``: this model's weights by name, when this module does not hold them
        whole (FSDP shards them; rank 0 writes what it gathered)."""
        folder = Path(folder)
        self.config.save(folder)
        adapter = (
            self.adapter.state_dict()
            if state is None
            else {
                k.removeprefix("adapter."): v for k, v in state.items() if k.startswith("adapter.")
            }
        )
        save_file({k: v.contiguous() for k, v in adapter.items()}, str(folder / WEIGHTS_NAME))
        trainable = {
            n: (p if state is None else state[f"backbone.{n}"]).detach().contiguous()
            for n, p in self.backbone.named_parameters()
            if p.requires_grad
        }
        if trainable:
            save_file(trainable, str(folder / BACKBONE_WEIGHTS_NAME))

    @classmethod
    def from_pretrained(
        cls,
        folder: Path,
        backbone: Backbone,
        encodings: ItemEncodings,
        catalogue: str | None = None,
    ) -> RecLLMModel:
        """Attach a saved adapter to ``backbone``; refuse another backbone or catalogue.

        The catalogue is identified by ``catalogue`` (see :func:`catalogue_hash`) or,
        when not given, by the text hash the encodings were made from."""
        folder = Path(folder)
        catalogue = catalogue or str(encodings.meta.get("text_sha256", ""))[:16] or None
        config = AdapterConfig.load(folder)
        problems = []
        if config.backbone and config.backbone != backbone.base_fingerprint():
            problems.append(
                f"the adapter was trained on backbone {config.backbone}, this backbone is {backbone.base_fingerprint()}"
            )
        if config.n_items != encodings.pooled.shape[0]:
            problems.append(
                f"the adapter covers {config.n_items} items, the catalogue has {encodings.pooled.shape[0]}"
            )
        if catalogue and config.catalogue and catalogue != config.catalogue:
            problems.append(
                "the item texts differ from those the adapter was trained with (another catalogue?)"
            )
        ConfigError.collect(f"checkpoint {folder}", problems)
        model = cls(backbone, encodings, config)
        model.adapter.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        backbone_file = folder / BACKBONE_WEIGHTS_NAME
        if backbone_file.is_file():
            model.backbone.load_trainable_state_dict(load_file(str(backbone_file)))
        return model.eval()
