"""The explanation generator: a small encoder-decoder Transformer trained from scratch.

Why this architecture: explanations here state facts, so the generator reads them. Its
encoder reads the pair's facts as tokens (``vocab.source_tokens``) after a prefix of
vectors from the recommender: the user representation from the adapter's aggregator, the
recommended item's metadata embedding and the cited history items' embeddings (added to
their slot tokens). A 2+2-layer model of width 128 learns the phrasings in minutes on a
CPU and writes a sentence in a few milliseconds, well under the 100 ms budget; titles go
through slots, so they are copied exactly. Decoding: greedy, beam search or sampling.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from recllm.config import lenient_from_dict
from recllm.errors import ConfigError, RecLLMError
from recllm.explain.incremental import IncrementalDecoder

CONFIG_FILE = "generator_config.json"
WEIGHTS_FILE = "generator.safetensors"
METHODS = ("greedy", "beam", "sample")


@dataclass
class GeneratorConfig:
    """Size of the generator and of its conditioning inputs."""

    vocab_size: int = 0  # set from the vocabulary
    d_model: int = field(default=128, metadata={"help": "width of the Transformer"})
    n_heads: int = field(default=4, metadata={"help": "attention heads"})
    encoder_layers: int = field(default=2, metadata={"help": "layers reading the facts"})
    decoder_layers: int = field(default=2, metadata={"help": "layers writing the sentence"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in every layer"})
    max_source: int = field(default=96, metadata={"help": "fact tokens read (longer: cut)"})
    max_target: int = field(default=48, metadata={"help": "tokens written at most"})
    user_dim: int = field(default=0, metadata={"help": "size of the user vector (0: none)"})
    item_dim: int = field(default=0, metadata={"help": "size of item embeddings (0: none)"})

    def __post_init__(self) -> None:
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if min(self.encoder_layers, self.decoder_layers, self.max_source, self.max_target) < 1:
            problems.append("layers, max_source and max_target must be >= 1")
        ConfigError.collect("generator", problems)


@dataclass
class Conditioning:
    """What one batch is conditioned on. Shapes: source (B, S) token ids with mask (B, S);
    user (B, user_dim) or None; items (B, 4, item_dim) (recommended item, H1..H3) with
    items_mask (B, 4), or None."""

    source: Tensor
    source_mask: Tensor
    user: Tensor | None = None
    items: Tensor | None = None
    items_mask: Tensor | None = None


class ExplanationGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2):
        super().__init__()
        if config.vocab_size < 5:
            raise ConfigError("generator: vocab_size must be set from the vocabulary")
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d, padding_idx=pad_id)
        # scaled by sqrt(d) on input and tied to the output: start small, as in Vaswani et al.
        nn.init.normal_(self.embed.weight, std=d**-0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        self.positions = nn.Embedding(max(config.max_source, config.max_target) + 8, d)
        self.user_proj = nn.Linear(config.user_dim, d) if config.user_dim else None
        self.item_proj = nn.Linear(config.item_dim, d) if config.item_dim else None
        self.segment = nn.Embedding(3, d)  # 0 user prefix, 1 item prefix, 2 fact tokens
        enc = nn.TransformerEncoderLayer(
            d, config.n_heads, 4 * d, config.dropout, batch_first=True, norm_first=True
        )
        dec = nn.TransformerDecoderLayer(
            d, config.n_heads, 4 * d, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(enc, config.encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec, config.decoder_layers)
        self.norm = nn.LayerNorm(d)

    def encode(self, cond: Conditioning) -> tuple[Tensor, Tensor]:
        """Memory (B, P + S, d) and its padding mask (True = ignore)."""
        source = cond.source[:, : self.config.max_source]
        keep = cond.source_mask[:, : self.config.max_source]
        positions = torch.arange(source.shape[1], device=source.device)
        parts = [
            self.embed(source) * math.sqrt(self.config.d_model)
            + self.positions(positions)
            + self.segment.weight[2]
        ]
        masks = [keep]
        if self.item_proj is not None and cond.items is not None:
            assert cond.items_mask is not None
            parts.insert(0, self.item_proj(cond.items) + self.segment.weight[1])  # (B, 4, d)
            masks.insert(0, cond.items_mask)
        if self.user_proj is not None and cond.user is not None:
            parts.insert(0, (self.user_proj(cond.user) + self.segment.weight[0]).unsqueeze(1))
            masks.insert(0, torch.ones(len(source), 1, dtype=torch.bool, device=source.device))
        memory_mask = ~torch.cat(masks, dim=1)
        memory = self.encoder(torch.cat(parts, dim=1), src_key_padding_mask=memory_mask)
        return memory, memory_mask

    def decode(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """(B, T) tokens so far -> (B, T, vocab) next-token logits."""
        return self.norm(self._states(tokens, memory, memory_mask)) @ self.embed.weight.T

    def next_logits(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """(B, T) tokens so far -> (B, vocab) logits of the next token only: decoding
        needs no vocabulary projection of the earlier positions."""
        states = self._states(tokens, memory, memory_mask)[:, -1]
        return self.norm(states) @ self.embed.weight.T

    def _step_logits(self, decoder: IncrementalDecoder, token: Tensor, position: int) -> Tensor:
        """(B,) newest tokens at ``position`` -> (B, vocab) logits of the next, reusing the
        keys and values of the earlier positions (what :meth:`next_logits` recomputes)."""
        x = self.embed(token) * math.sqrt(self.config.d_model) + self.positions.weight[position]
        states = decoder.step(x.unsqueeze(1), token == self.pad_id)[:, 0]
        return self.norm(states) @ self.embed.weight.T

    def _states(self, tokens: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """(B, T, d) decoder states; the output projection is the tied input embedding."""
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        x = self.embed(tokens) * math.sqrt(self.config.d_model) + self.positions(positions)
        causal = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        return self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=tokens == self.pad_id,
            memory_key_padding_mask=memory_mask,
        )

    def forward(self, cond: Conditioning, target: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V) and the token cross-entropy L_gen.

        ``target`` (B, T): <s> w1 .. wn </s>, padded; the loss skips padding."""
        memory, memory_mask = self.encode(cond)
        logits = self.decode(target[:, :-1], memory, memory_mask)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            target[:, 1:].reshape(-1),
            ignore_index=self.pad_id,
        )
        return logits, loss

    @torch.inference_mode()
    def generate(
        self,
        cond: Conditioning,
        method: str = "greedy",
        beam_size: int = 4,
        temperature: float = 1.0,
        top_k: int = 0,
        generator: torch.Generator | None = None,
        greedy_rows: int = 0,
    ) -> list[list[int]]:
        """Token ids of one sentence per row (without <s> and </s>).

        ``greedy_rows``: when sampling, the first rows decode greedily all the same, so a
        first choice and its sampled alternatives share one decoding pass."""
        if method not in METHODS:
            raise RecLLMError(f"decoding method must be one of {METHODS}, got {method!r}")
        self.eval()
        memory, memory_mask = self.encode(cond)
        if method == "beam":
            return [
                self._beam(memory[i : i + 1], memory_mask[i : i + 1], beam_size)
                for i in range(len(memory))
            ]
        tokens = torch.full((len(memory), 1), self.bos_id, dtype=torch.long)
        done = torch.zeros(len(memory), dtype=torch.bool)
        decoder = IncrementalDecoder(self.decoder, memory, memory_mask)
        for position in range(self.config.max_target):
            logits = self._step_logits(decoder, tokens[:, -1], position)
            step = logits.argmax(-1)
            if method == "sample" and greedy_rows < len(step):
                step[greedy_rows:] = self._sample(
                    logits[greedy_rows:], temperature, top_k, generator
                )
            step = step.masked_fill(done, self.pad_id)
            tokens = torch.cat([tokens, step.unsqueeze(1)], dim=1)
            done |= step == self.eos_id
            if done.all():
                break
        return [self._strip(row.tolist()) for row in tokens[:, 1:]]

    @staticmethod
    def _sample(
        logits: Tensor, temperature: float, top_k: int, generator: torch.Generator | None
    ) -> Tensor:
        """(B, vocab) -> (B,) tokens drawn from the tempered, top-k-cut distribution."""
        logits = logits / max(temperature, 1e-6)
        if top_k:
            cutoff = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < cutoff, float("-inf"))
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)

    def _beam(self, memory: Tensor, memory_mask: Tensor, size: int) -> list[int]:
        beams: list[tuple[list[int], float]] = [([self.bos_id], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(self.config.max_target):
            tokens = torch.tensor([b for b, _ in beams])
            logp = torch.log_softmax(
                self.next_logits(
                    tokens, memory.expand(len(beams), -1, -1), memory_mask.expand(len(beams), -1)
                ),
                -1,
            )
            candidates = []
            for (seq, score), row in zip(beams, logp, strict=True):
                values, ids = row.topk(size)
                candidates += [
                    ([*seq, int(i)], score + float(v)) for v, i in zip(values, ids, strict=True)
                ]
            candidates.sort(key=lambda c: -c[1] / len(c[0]))
            beams = []
            for seq, score in candidates:
                (finished if seq[-1] == self.eos_id else beams).append((seq, score))
                if len(beams) == size:
                    break
            if len(finished) >= size or not beams:
                break
        best = max(finished or beams, key=lambda c: c[1] / len(c[0]))
        return self._strip(best[0][1:])

    def _strip(self, ids: list[int]) -> list[int]:
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i != self.pad_id:
                out.append(i)
        return out

    def save_pretrained(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_FILE)
        )
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder: Path) -> ExplanationGenerator:
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise RecLLMError(
                f"{folder} is not a saved explanation generator (expected {CONFIG_FILE} and "
                f"{WEIGHTS_FILE}); train one with `recllm train-explainer`"
            )
        config = lenient_from_dict(
            GeneratorConfig, json.loads((folder / CONFIG_FILE).read_text()), "generator config"
        )
        model = cls(config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        model.eval()
        return model
