"""The assembled model on a tiny random backbone: loss, causality, cold items, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import HIDDEN, tiny_bert_tokenizer, tiny_hf_config

from recllm.data.sequences import UserSequences
from recllm.data.splits import age_groups
from recllm.errors import ConfigError
from recllm.models.adapter.config import AdapterConfig
from recllm.models.backbone import BackboneConfig, backbone_from_hf_config
from recllm.models.item_encoder import ItemEncodings, texts_sha256
from recllm.models.recllm import RecLLMModel, catalogue_hash
from recllm.models.sequential import SequenceScorer

N_ITEMS, M = 20, 4


def encodings(seed: int = 0, n_items: int = N_ITEMS) -> ItemEncodings:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n_items, M, dtype=torch.bool)
    mask[3, 2:] = False
    return ItemEncodings(
        pooled=torch.randn(n_items, HIDDEN, generator=g),
        tokens=torch.randn(n_items, M, HIDDEN, generator=g),
        token_mask=mask,
    )


def model(family: str = "bert", seed: int = 0, **adapter) -> RecLLMModel:
    torch.manual_seed(seed)
    backbone = backbone_from_hf_config(tiny_hf_config(family), BackboneConfig())
    config = AdapterConfig(d_model=16, n_heads=4, max_len=8, dropout=0.0, **adapter)
    return RecLLMModel(backbone, encodings(), config)


def batch() -> tuple[torch.Tensor, ...]:
    items = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 20, 20, 20]])
    weights = torch.tensor([[1.0, 0.8, 0.6, 1.0, 0.4], [1.0, 0.2, 0.0, 0.0, 0.0]])
    mask = items != 20
    targets = torch.tensor([[2, 3, 4, 5, 6], [7, 8, 20, 20, 20]])
    return items, weights, mask, targets


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
@pytest.mark.parametrize("loss", ["bpr", "ce"])
def test_loss_trains_the_adapter_not_the_frozen_backbone(family: str, loss: str) -> None:
    m = model(family)
    items, weights, mask, targets = batch()
    out = m(items, weights, mask, targets, loss=loss, generator=torch.Generator().manual_seed(0))
    assert out.queries.shape == (2, 5, 16) and out.attention.shape == (2, 5, 5)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    assert m.adapter.item_ids is not None and m.adapter.item_ids.weight.grad is not None
    assert (
        m.adapter.to_backbone.weight.grad is not None
        and m.adapter.to_backbone.weight.grad.abs().sum() > 0
    )


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_whole_model_is_causal(family: str) -> None:
    m = model(family).eval()
    items, weights, mask, _ = batch()
    changed = items.clone()
    changed[0, 3] = 11
    before = m(items, weights, mask).queries
    after = m(changed, weights, mask).queries
    assert torch.allclose(before[0, :3], after[0, :3], atol=1e-6)
    assert not torch.allclose(before[0, 3], after[0, 3])


def test_items_never_seen_still_score_from_metadata() -> None:
    m = model(use_item_ids=False).eval()
    scores = m.score_last(*batch()[:3])
    assert scores.shape == (2, N_ITEMS) and torch.isfinite(scores).all()
    # Without ID embeddings two items with identical metadata must score identically.
    m.pooled[5] = m.pooled[9]
    scores = m.score_last(*batch()[:3])
    assert torch.allclose(scores[:, 5], scores[:, 9])


def test_item_id_dropout_zeroes_whole_id_rows_in_training_only() -> None:
    m = model(item_id_dropout=0.5)
    assert m.adapter.item_ids is not None and m.adapter.meta_pooled is not None
    metadata_only = m.adapter.meta_pooled(m.pooled)
    with_ids = metadata_only + m.adapter.item_ids.weight
    torch.manual_seed(1)
    table = m.item_embeddings()
    dropped = torch.isclose(table, metadata_only[:N_ITEMS]).all(1)
    kept = torch.isclose(table, with_ids[:N_ITEMS]).all(1)
    # every row is either exactly metadata-only or exactly ID + metadata, never rescaled
    assert bool((dropped | kept).all()) and 0 < int(dropped.sum()) < N_ITEMS
    m.eval()
    assert torch.allclose(m.item_embeddings(), with_ids[:N_ITEMS])


def test_learned_missing_id_stands_in_for_dropped_and_untrained_ids(tmp_path: Path) -> None:
    """``missing_id: learned``: an item outside the training pool (a cold-start item)
    and an ID dropped in a training step both take one trained vector; the record of
    which items have IDs is saved with the weights and grows with the catalogue."""
    m = model(missing_id="learned", item_id_dropout=0.5)
    adapter = m.adapter
    assert adapter.item_ids is not None and adapter.meta_pooled is not None
    assert adapter.missing_id is not None and adapter.has_id is not None
    cold = torch.tensor([4, 9])
    m.training_items = torch.tensor([i for i in range(N_ITEMS) if i not in (4, 9)])
    assert m.training_items is not None and len(m.training_items) == N_ITEMS - 2
    with torch.no_grad():
        adapter.missing_id.fill_(0.5)
    metadata = adapter.meta_pooled(m.pooled)[:N_ITEMS]
    with_ids = metadata + adapter.item_ids.weight[:N_ITEMS]
    with_stand_in = metadata + 0.5

    m.eval()
    table = m.item_embeddings()
    assert torch.allclose(table[cold], with_stand_in[cold])
    warm = adapter.has_id[:N_ITEMS]
    assert torch.allclose(table[warm], with_ids[warm])

    m.train()
    torch.manual_seed(1)
    table = m.item_embeddings()
    replaced = torch.isclose(table, with_stand_in).all(1)
    assert bool(replaced[cold].all())
    assert bool((replaced | torch.isclose(table, with_ids).all(1)).all())
    assert int(replaced[warm].sum()) > 0  # some warm IDs dropped this step
    items, weights, mask, targets = batch()
    m(items, weights, mask, targets, loss="ce").loss.backward()
    assert adapter.missing_id.grad is not None and adapter.missing_id.grad.abs().sum() > 0

    m.save_pretrained(tmp_path / "adapter")
    loaded = RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, encodings()).eval()
    assert torch.equal(loaded.item_embeddings(), m.eval().item_embeddings())
    new = ItemEncodings(
        pooled=m.pooled[:1].clone(), tokens=m.meta_tokens[:1].clone(), token_mask=m.meta_mask[:1]
    )
    loaded.update_items(torch.tensor([N_ITEMS]), new)  # a new item with item 0's text
    assert torch.allclose(loaded.item_embeddings()[N_ITEMS], with_stand_in[0], atol=1e-6)
    with pytest.raises(ConfigError, match="missing_id must be one of"):
        AdapterConfig(missing_id="mean")
    with pytest.raises(ConfigError, match="missing_id 'learned' needs use_item_ids"):
        AdapterConfig(missing_id="learned", use_item_ids=False)


def test_text_initialised_ids_follow_the_item_texts() -> None:
    """``item_id_init: text``: the IDs start as whitened principal components of the
    pooled texts at the random start's scale, so near-identical texts start close."""
    enc = encodings()
    enc.pooled[1] = enc.pooled[0] + 1e-3 * torch.randn(HIDDEN)
    torch.manual_seed(0)
    backbone = backbone_from_hf_config(tiny_hf_config("bert"), BackboneConfig())
    config = AdapterConfig(d_model=16, n_heads=4, max_len=8, item_id_init="text")
    ids = RecLLMModel(backbone, enc, config).adapter.item_ids
    assert ids is not None
    table = ids.weight.detach()
    assert torch.allclose(table[:N_ITEMS].std(0), torch.full((16,), 0.02), atol=1e-6)
    assert bool((table[N_ITEMS] == 0).all())  # the padding row
    cosine = torch.nn.functional.cosine_similarity(table[:1], table[:N_ITEMS])
    assert cosine[1] > 0.99 and bool((cosine[2:] < 0.9).all())
    # the same directions as the texts' centred principal components, whitened
    centred = enc.pooled - enc.pooled.mean(0)
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ basis[:16].T
    assert torch.allclose(table[:N_ITEMS], projected / projected.std(0) * 0.02, atol=1e-5)
    random = model().adapter.item_ids
    assert random is not None and not torch.allclose(random.weight, ids.weight)
    with pytest.raises(ConfigError, match="item_id_init must be one of"):
        AdapterConfig(item_id_init="pca")
    with pytest.raises(ConfigError, match="item_id_init 'text' needs use_item_ids"):
        AdapterConfig(item_id_init="text", use_item_ids=False)


def test_null_space_fusion_keeps_the_text_frozen_beside_trained_ids(tmp_path: Path) -> None:
    """``item_fusion: null_space``: an item is its whitened top text components (frozen)
    followed by ``id_dims`` trained ID dimensions; saved, loaded and grown consistently."""
    m = model(item_fusion="null_space", id_dims=4)
    assert m.adapter.meta_pooled is None and m.adapter.item_ids is not None
    table = m.item_embeddings().detach()
    assert table.shape == (N_ITEMS, 16)
    centred = m.pooled[:N_ITEMS] - m.pooled[:N_ITEMS].mean(0)
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)
    text = centred @ basis[:12].T
    text = text / (text.std(0) * 12**0.5)
    assert torch.allclose(table[:, :12].abs(), text.abs(), atol=1e-4)  # up to each sign
    assert torch.allclose(table[:, 12:], m.adapter.item_ids.weight[:N_ITEMS])

    items, weights, mask, targets = batch()
    optimiser = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1.0)
    m.train()
    m(items, weights, mask, targets, loss="ce").loss.backward()
    optimiser.step()
    trained = m.eval().item_embeddings().detach()
    assert torch.equal(trained[:, :12], table[:, :12])  # the text half never trains
    assert not torch.allclose(trained[:, 12:], table[:, 12:])

    m.save_pretrained(tmp_path / "adapter")
    loaded = RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, encodings()).eval()
    assert torch.equal(loaded.item_embeddings(), trained)
    new = ItemEncodings(
        pooled=m.pooled[:1].clone(), tokens=m.meta_tokens[:1].clone(), token_mask=m.meta_mask[:1]
    )
    loaded.update_items(torch.tensor([N_ITEMS]), new)  # a new item with item 0's text
    grown = loaded.item_embeddings()
    assert grown.shape == (N_ITEMS + 1, 16)
    assert torch.allclose(grown[N_ITEMS, :12], trained[0, :12], atol=1e-6)
    assert bool((grown[N_ITEMS, 12:] == 0).all())  # no ID yet: its text alone scores it

    with pytest.raises(ConfigError, match="id_dims must be in"):
        AdapterConfig(d_model=16, n_heads=4, item_fusion="null_space", id_dims=16)
    wide = AdapterConfig(d_model=48, n_heads=4, item_fusion="null_space", id_dims=4)
    with pytest.raises(ConfigError, match="more than the text's 32"):
        RecLLMModel(m.backbone, encodings(), wide)
    with pytest.raises(ConfigError, match="item_fusion must be one of"):
        AdapterConfig(item_fusion="concat")


def test_text_alignment_pulls_each_id_towards_its_own_text() -> None:
    """``text_alignment``: the training loss gains an InfoNCE term that is low when each
    ID embedding points at its own projected text; it applies in training only."""
    items, weights, mask, targets = batch()
    plain = model()
    aligned = model(text_alignment=1.0)  # same seed: the same weights
    plain.train()
    aligned.train()
    rec = plain(items, weights, mask, targets, loss="ce").loss
    total = aligned(items, weights, mask, targets, loss="ce").loss
    adapter = aligned.adapter
    assert adapter.item_ids is not None and adapter.meta_pooled is not None
    term = adapter.alignment_loss(targets[mask], aligned.pooled)
    assert torch.allclose(total, rec + term)
    with torch.no_grad():  # IDs equal to their own texts' projections: the term falls
        adapter.item_ids.weight[:N_ITEMS] = adapter.meta_pooled(aligned.pooled[:N_ITEMS])
    assert adapter.alignment_loss(targets[mask], aligned.pooled) < term
    assert float(adapter.alignment_loss(torch.tensor([3, 3]), aligned.pooled)) == 0.0
    # a training term only: in eval mode the loss is the ranking loss alone
    evaluated = model(text_alignment=1.0).eval()(items, weights, mask, targets, loss="ce").loss
    assert torch.equal(evaluated, model().eval()(items, weights, mask, targets, loss="ce").loss)
    with pytest.raises(ConfigError, match="text_alignment needs use_item_ids"):
        AdapterConfig(text_alignment=0.5, use_item_ids=False)
    with pytest.raises(ConfigError, match="alignment_temperature > 0"):
        AdapterConfig(text_alignment=0.5, alignment_temperature=0.0)


def test_item_age_groups_add_one_learned_vector_per_group(tmp_path: Path) -> None:
    """``item_age_buckets``: items are grouped by their first training interaction into
    equally large groups, oldest first; an item never seen, and one added after training,
    joins the newest; each item's embedding adds its group's vector, and the groups are
    saved with the weights."""
    m = model(item_age_buckets=4)
    adapter = m.adapter
    assert adapter.item_age is not None and adapter.age_bucket is not None
    first_seen = np.arange(N_ITEMS, dtype=np.float64)[::-1] * 10.0  # item 0 newest
    first_seen[7] = np.nan  # never in training
    adapter.set_item_ages(first_seen)
    groups = adapter.age_bucket[:N_ITEMS]
    assert groups[0] == 3 and groups[N_ITEMS - 1] == 0 and groups[7] == 3
    seen = torch.from_numpy(~np.isnan(first_seen))
    sizes = torch.bincount(groups[seen], minlength=4)
    assert int(sizes.max() - sizes.min()) <= 1  # 19 items seen: groups of 4 or 5
    order = torch.from_numpy(first_seen[seen.numpy()].argsort())
    assert bool((groups[seen][order].diff() >= 0).all())  # older never in a newer group
    assert adapter.age_bucket[N_ITEMS] == 3  # the padding row is left alone
    with pytest.raises(ValueError, match="first_seen has 19 items, the catalogue 20"):
        adapter.set_item_ages(first_seen[1:])

    m.eval()
    without_age = adapter._fused_items(m.pooled)[:N_ITEMS]
    assert torch.allclose(m.item_embeddings(), without_age + adapter.item_age.weight[groups])
    items, weights, mask, targets = batch()
    m.train()
    m(items, weights, mask, targets, loss="ce").loss.backward()
    assert adapter.item_age.weight.grad is not None
    assert adapter.item_age.weight.grad.abs().sum(1).gt(0).all()  # every group scored

    m.save_pretrained(tmp_path / "adapter")
    loaded = RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, encodings()).eval()
    assert torch.equal(loaded.adapter.age_bucket, adapter.age_bucket)
    assert torch.equal(loaded.item_embeddings(), m.eval().item_embeddings())
    new = ItemEncodings(
        pooled=m.pooled[:1].clone(), tokens=m.meta_tokens[:1].clone(), token_mask=m.meta_mask[:1]
    )
    loaded.update_items(torch.tensor([N_ITEMS]), new)
    assert loaded.adapter.age_bucket is not None
    assert loaded.adapter.age_bucket[N_ITEMS] == 3
    for bad in (1, -2):
        with pytest.raises(ConfigError, match="item_age_buckets must be 0"):
            AdapterConfig(item_age_buckets=bad)
    with pytest.raises(ConfigError, match="item_age_buckets does not apply to item_fusion"):
        AdapterConfig(item_age_buckets=4, item_fusion="null_space")


def test_id_dropout_spares_the_newest_age_groups_in_training() -> None:
    """``id_dropout_spares_newest``: the newest groups' IDs are never dropped in training;
    the other items' IDs are dropped at the usual rate."""
    m = model(item_id_dropout=0.9, item_age_buckets=4, id_dropout_spares_newest=1)
    adapter = m.adapter
    assert adapter.item_ids is not None and adapter.age_bucket is not None
    adapter.set_item_ages(np.arange(N_ITEMS, dtype=np.float64))  # the last 5 items newest
    newest = adapter.age_bucket[:N_ITEMS] == 3
    assert int(newest.sum()) == 5
    m.eval()
    with_ids = m.item_embeddings()
    m.train()
    ever_dropped = torch.zeros(N_ITEMS, dtype=torch.bool)
    torch.manual_seed(0)
    for _ in range(5):
        ever_dropped |= ~torch.isclose(m.item_embeddings(), with_ids).all(1)
    assert not ever_dropped[newest].any()  # at 0.9, five draws drop nearly every other item
    assert int(ever_dropped[~newest].sum()) == int((~newest).sum())


def test_id_dropout_spares_newest_is_validated() -> None:
    with pytest.raises(ConfigError, match="id_dropout_spares_newest must be in"):
        AdapterConfig(item_id_dropout=0.5, item_age_buckets=4, id_dropout_spares_newest=4)
    with pytest.raises(ConfigError, match="id_dropout_spares_newest must be in"):
        AdapterConfig(item_id_dropout=0.5, id_dropout_spares_newest=1)  # no age groups
    with pytest.raises(ConfigError, match="needs item_id_dropout"):
        AdapterConfig(item_age_buckets=4, id_dropout_spares_newest=1)


def test_age_groups_rank_items_so_tied_times_leave_no_group_empty() -> None:
    """Coarse timestamps tie many items; ranking (ties by id) still fills every group."""
    tied = np.array([5.0] * 9 + [6.0, 7.0, 8.0])  # 9 of 12 items share the oldest time
    assert age_groups(tied, [0.25, 0.5, 0.75]).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert age_groups(np.full(4, 3.0), [0.5]).tolist() == [0, 0, 1, 1]
    never = np.full(3, np.nan)  # nothing seen: every item is new
    assert age_groups(never, [0.5]).tolist() == [1, 1, 1]


def test_item_id_dropout_is_validated() -> None:
    with pytest.raises(ConfigError, match="item_id_dropout must be in"):
        AdapterConfig(item_id_dropout=1.0)
    with pytest.raises(ConfigError, match="item_id_dropout needs use_item_ids"):
        AdapterConfig(item_id_dropout=0.3, use_item_ids=False)


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"use_cross_attention": False},
        {"use_behaviour_weights": False},
        {"use_metadata": False, "use_cross_attention": False},
        {"use_user_vector": True},
    ],
)
def test_ablations_build_and_run(flags: dict) -> None:
    m = model(**flags)
    out = m(*batch(), loss="ce")
    assert out.loss is not None and torch.isfinite(out.loss)


def test_save_and_load_round_trip_and_mismatches(tmp_path: Path) -> None:
    m = model().eval()
    m.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    loaded = RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, encodings()).eval()
    assert torch.equal(m.score_last(*batch()[:3]), loaded.score_last(*batch()[:3]))
    torch.manual_seed(5)
    other = backbone_from_hf_config(tiny_hf_config("bert"), BackboneConfig())
    with pytest.raises(ConfigError, match="trained on backbone"):
        RecLLMModel.from_pretrained(tmp_path / "adapter", other, encodings())
    with pytest.raises(ConfigError, match="covers 20 items"):
        RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, encodings(n_items=25))


def test_catalogue_is_checked_from_the_encodings_text_hash(tmp_path: Path) -> None:
    """Same item count, other item texts: refused even without ``catalogue=``."""
    texts = [f"item {i}" for i in range(N_ITEMS)]
    m = model(catalogue=catalogue_hash(texts))
    m.save_pretrained(tmp_path / "adapter")
    same, other = encodings(), encodings()
    same.meta["text_sha256"] = texts_sha256(texts)
    other.meta["text_sha256"] = texts_sha256([f"product {i}" for i in range(N_ITEMS)])
    RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, same)
    with pytest.raises(ConfigError, match="item texts differ"):
        RecLLMModel.from_pretrained(tmp_path / "adapter", m.backbone, other)


def test_out_of_catalogue_ids_are_rejected() -> None:
    items, weights, mask, _ = batch()
    items[0, 0] = 99
    with pytest.raises(ValueError, match="outside the catalogue"):
        model()(items, weights, mask)


def test_scorer_truncates_to_max_len_and_handles_users() -> None:
    m = model().eval()
    seqs = UserSequences(
        np.array([0, 12, 14]),
        np.array([*range(12), 1, 2], dtype=np.int32),
        np.ones(14, dtype=np.float32),
    )
    scores = SequenceScorer(m, batch_size=1)(np.array([0, 1]), seqs)
    assert scores.shape == (2, N_ITEMS)
    # Only the most recent max_len = 8 items matter.
    seqs2 = UserSequences(
        np.array([0, 8]), np.arange(4, 12, dtype=np.int32), np.ones(8, dtype=np.float32)
    )
    assert torch.allclose(scores[0], SequenceScorer(m)(np.array([0]), seqs2)[0], atol=1e-5)


@pytest.mark.parametrize("use_user_vector", [False, True])
def test_scorer_chunks_by_length_without_changing_any_users_scores(use_user_vector: bool) -> None:
    m = model(use_user_vector=use_user_vector).eval()
    lengths = [7, 1, 0, 3, 8, 2, 5]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    seqs = UserSequences(
        bounds, np.arange(bounds[-1], dtype=np.int32) % N_ITEMS, np.ones(bounds[-1], np.float32)
    )
    users = np.array([4, 0, 2, 6, 1, 3, 5])
    chunked = SequenceScorer(m, batch_size=2)(users, seqs)
    for row, user in enumerate(users):
        alone = SequenceScorer(m, batch_size=1)(np.array([user]), seqs)[0]
        assert torch.allclose(chunked[row], alone, atol=1e-5), f"user {user} moved"
    assert torch.all(chunked[2] == 0)  # the empty history keeps uniform scores


def test_instruction_prompt_changes_outputs_but_keeps_causality() -> None:
    torch.manual_seed(0)
    backbone = backbone_from_hf_config(
        tiny_hf_config("bert"), BackboneConfig(), tiny_bert_tokenizer()
    )
    plain = RecLLMModel(
        backbone, encodings(), AdapterConfig(d_model=16, n_heads=4, max_len=8, dropout=0.0)
    ).eval()
    prompted = RecLLMModel(
        backbone,
        encodings(),
        AdapterConfig(d_model=16, n_heads=4, max_len=8, dropout=0.0, prompt="next item:"),
    ).eval()
    prompted.adapter.load_state_dict(
        plain.adapter.state_dict()
    )  # same weights: only the prompt differs
    assert len(prompted.prompt_ids) > 0
    items, weights, mask, _ = batch()
    with_prompt = prompted(items, weights, mask).queries
    without = plain(items, weights, mask).queries
    assert with_prompt.shape == without.shape
    assert not torch.allclose(with_prompt, without)
    changed = items.clone()
    changed[0, 3] = 11
    assert torch.allclose(
        with_prompt[0, :3], prompted(changed, weights, mask).queries[0, :3], atol=1e-6
    )


def test_prompt_without_tokenizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs a backbone with a tokenizer"):
        model(prompt="next item:")


def test_users_without_history_get_uniform_scores() -> None:
    m = model().eval()
    seqs = UserSequences(
        np.array([0, 0, 3]), np.array([1, 2, 3], dtype=np.int32), np.ones(3, dtype=np.float32)
    )
    scores = SequenceScorer(m)(np.array([0, 1]), seqs)
    assert (scores[0] == 0).all() and scores[1].std() > 0


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_trained_backbone_weights_round_trip(tmp_path: Path, finetune: str) -> None:
    torch.manual_seed(0)
    backbone = backbone_from_hf_config(tiny_hf_config("bert"), BackboneConfig(finetune=finetune))
    m = RecLLMModel(
        backbone, encodings(), AdapterConfig(d_model=16, n_heads=4, max_len=8, dropout=0.0)
    )
    with torch.no_grad():
        for p in m.backbone.parameters():
            if p.requires_grad:
                p.add_(0.01)  # as training would
    m.save_pretrained(tmp_path)
    torch.manual_seed(0)
    fresh = backbone_from_hf_config(tiny_hf_config("bert"), BackboneConfig(finetune=finetune))
    loaded = RecLLMModel.from_pretrained(tmp_path, fresh, encodings())
    assert not loaded.training
    assert torch.allclose(
        m.eval().score_last(*batch()[:3]), loaded.score_last(*batch()[:3]), atol=1e-6
    )


@pytest.mark.parametrize("flags", [{}, {"use_cross_attention": False}, {"use_item_ids": False}])
def test_cached_catalogue_scores_equal_uncached_and_training_drops_it(flags: dict) -> None:
    m = model(**flags).eval()
    items, weights, mask, _ = batch()
    plain = m.score_last(items, weights, mask)
    m.cache_catalogue()
    assert m._tables is not None
    assert torch.allclose(m.score_last(items, weights, mask), plain, atol=1e-5)
    m.train()
    assert m._tables is None  # weights may change now: no stale tables


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_backbone_attention_maps_are_returned_when_asked(family: str) -> None:
    m = model(family).eval()
    m.backbone.use_eager_attention()
    items, weights, mask, _ = batch()
    out = m(items, weights, mask, output_attentions=True)
    maps = out.backbone_attentions
    assert maps is not None and len(maps) == 2 and maps[0].shape == (2, 4, 5, 5)
    assert torch.allclose(maps[0][0].sum(-1), torch.ones(4, 5), atol=1e-5)
    assert torch.all(maps[0][0].triu(1) == 0)  # causal: no key after its query
    assert m(items, weights, mask).backbone_attentions is None
