"""The explanation generator: shapes, it learns, every decoding method, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recllm.errors import ConfigError, RecLLMError
from recllm.explain.generator import Conditioning, ExplanationGenerator, GeneratorConfig
from recllm.explain.incremental import IncrementalDecoder


def tiny(user_dim: int = 3, item_dim: int = 5) -> ExplanationGenerator:
    torch.manual_seed(0)
    config = GeneratorConfig(
        vocab_size=12, d_model=16, n_heads=2, max_target=8, user_dim=user_dim, item_dim=item_dim
    )
    return ExplanationGenerator(config)


def batch() -> tuple[Conditioning, torch.Tensor]:
    source = torch.tensor([[4, 5, 6], [7, 8, 0]])
    cond = Conditioning(
        source,
        source != 0,
        torch.randn(2, 3),
        torch.randn(2, 4, 5),
        torch.ones(2, 4, dtype=torch.bool),
    )
    target = torch.tensor([[1, 9, 10, 2], [1, 11, 2, 0]])  # <s> ... </s>, padded
    return cond, target


def test_forward_shapes_and_learning() -> None:
    model = tiny()
    cond, target = batch()
    logits, loss = model(cond, target)
    assert logits.shape == (2, 3, 12) and loss.ndim == 0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(loss.detach())
    for _ in range(60):
        _, loss = model(cond, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first / 4
    assert model.generate(cond, "greedy") == [[9, 10], [11]]  # it learned both sentences
    assert model.generate(cond, "beam", beam_size=3) == [[9, 10], [11]]
    sampled = model.generate(
        cond, "sample", temperature=0.5, top_k=2, generator=torch.Generator().manual_seed(0)
    )
    assert len(sampled) == 2 and all(len(s) <= 8 for s in sampled)


def test_next_token_logits_are_the_last_position_of_the_full_decode() -> None:
    """Decoding projects only the last state onto the vocabulary; it must equal the
    teacher-forced logits of that position."""
    model = tiny().eval()
    cond, target = batch()
    memory, memory_mask = model.encode(cond)
    with torch.no_grad():
        full = model.decode(target[:, :3], memory, memory_mask)
        last = model.next_logits(target[:, :3], memory, memory_mask)
    assert last.shape == (2, 12)
    torch.testing.assert_close(last, full[:, -1])


def test_incremental_decoding_matches_the_full_decoder_at_every_position() -> None:
    """Generation feeds one token per step through cached keys and values; each step's
    logits must equal the full decoder's at that position, padded rows included."""
    model = tiny().eval()
    cond, target = batch()
    memory, memory_mask = model.encode(cond)
    with torch.no_grad():
        full = model.decode(target, memory, memory_mask)  # (2, 4, vocab)
        decoder = IncrementalDecoder(model.decoder, memory, memory_mask)
        steps = [model._step_logits(decoder, target[:, t], t) for t in range(target.shape[1])]
    written = target != model.pad_id  # a padded position's logits are never used
    torch.testing.assert_close(torch.stack(steps, 1)[written], full[written], atol=1e-5, rtol=1e-5)


def test_generation_writes_what_a_full_recompute_would() -> None:
    """Greedy decoding with the cache picks the tokens that rerunning the whole decoder
    over the prefix at each step picks (an untrained model: near-ties are likely)."""
    model = tiny().eval()
    cond, _ = batch()
    memory, memory_mask = model.encode(cond)
    tokens = torch.full((2, 1), model.bos_id)
    for _ in range(model.config.max_target):
        step = model.next_logits(tokens, memory, memory_mask).argmax(-1)
        tokens = torch.cat([tokens, step.unsqueeze(1)], 1)
    assert model.generate(cond, "greedy") == [model._strip(row.tolist()) for row in tokens[:, 1:]]


def test_conditioning_is_optional_and_errors_are_clear(tmp_path: Path) -> None:
    model = tiny(user_dim=0, item_dim=0)
    cond, target = batch()
    _, loss = model(Conditioning(cond.source, cond.source_mask), target)
    assert torch.isfinite(loss)
    model.save_pretrained(tmp_path / "g")
    loaded = ExplanationGenerator.from_pretrained(tmp_path / "g")
    plain = Conditioning(cond.source, cond.source_mask)
    assert loaded.generate(plain) == model.generate(plain)
    with pytest.raises(RecLLMError, match="method must be one of"):
        model.generate(plain, "nucleus")
    with pytest.raises(RecLLMError, match="not a saved explanation generator"):
        ExplanationGenerator.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="must divide"):
        GeneratorConfig(vocab_size=12, d_model=10, n_heads=4)


def test_training_sentences_longer_than_the_generator_writes_are_cut() -> None:
    """Long product titles gave Beauty sentences longer than the position table."""
    from recllm.explain.conditioning import targets
    from recllm.explain.vocab import BOS, EOS, Vocab, tokenize

    long = " ".join(f"word{i}" for i in range(60))
    vocab = Vocab.build([tokenize(long)])
    ids = targets(vocab, [long, "word1 word2"], max_target=8)
    assert ids.shape == (2, 9)  # BOS + at most 8 written tokens
    assert ids[0, 0] == vocab.index[BOS] and ids[0, -1] == vocab.index[EOS]
    config = GeneratorConfig(vocab_size=len(vocab), d_model=16, n_heads=2, max_target=8)
    source = torch.ones(2, 3, dtype=torch.long)
    _, loss = ExplanationGenerator(config)(Conditioning(source, source > 0), ids)
    assert torch.isfinite(loss)
