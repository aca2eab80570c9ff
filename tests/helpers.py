"""Small builders shared by tests: tiny transformer configs, a tokenizer, toy data.

Everything is made in the test process; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import BertConfig, GPT2Config, LlamaConfig

from recllm.config import from_dict
from recllm.recipes.train import TrainConfig, TrainRecipe
from recllm.routing.catalog import Catalog
from recllm.routing.classifier import ClassifierConfig
from recllm.routing.schema import INTENTS, Intent

HIDDEN = 32
VOCAB = 128


def tiny_hf_config(family: str):
    """A 2-layer, hidden-32 transformers config of the given family."""
    if family == "bert":
        return BertConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    if family == "llama":
        return LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    if family == "gpt2":
        return GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=64)
    raise AssertionError(family)


def tiny_bert_tokenizer():
    """A WordPiece tokenizer over single letters and digits, built without downloads."""
    from transformers import BertTokenizerFast

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    vocab += list("|:,.()'-&!?")
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)})


def save_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A tiny random BERT with its tokenizer saved as a loadable model folder."""
    return save_tiny_model(folder, "bert", seed)


def save_tiny_model(folder: Path, family: str, seed: int = 0) -> Path:
    """A tiny random model of ``family`` saved with the letter tokenizer as a model folder."""
    from transformers import AutoModel

    torch.manual_seed(seed)
    AutoModel.from_config(tiny_hf_config(family)).save_pretrained(folder)
    tiny_bert_tokenizer().save_pretrained(folder)
    return folder


def write_toy_movielens(folder: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """A small ML-100K-format folder (u.data, u.item, u.genre) with sequential signal:
    users mostly move from item i to item i + 1."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genres = [
        "unknown",
        "Action",
        "Adventure",
        "Animation",
        "Children's",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ]
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)))
    lines = []
    for i in range(1, n_items + 1):
        flags = ["0"] * 19
        flags[1 + i % 18] = "1"
        lines.append(
            f"{i}|Movie {i} ({1980 + i % 20})|01-Jan-{1980 + i % 20}||http://x|" + "|".join(flags)
        )
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")
    rows = []
    for u in range(1, n_users + 1):
        start = int(rng.integers(1, n_items - 10))
        length = int(rng.integers(6, 12))
        for t in range(length):
            item = (start + t - 1) % n_items + 1
            rows.append(f"{u}\t{item}\t{int(rng.integers(1, 6))}\t{880000000 + 1000 * t + u}")
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    return folder


TOY_FEATURES = ("strings", "pedal", "cable", "strap", "tuner", "capo", "stand", "pick", "mic")


def write_toy_reviews(folder: Path, n_users: int = 30, n_items: int = 9, seed: int = 0) -> Path:
    """An Amazon 2014 reviews folder (Musical Instruments) whose item i is reviewed for its
    feature ``TOY_FEATURES[i % 9]``: one sentence names it, the others are generic."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for u in range(n_users):
        start = int(rng.integers(0, n_items))
        for t in range(int(rng.integers(5, 8))):
            item = (start + t) % n_items
            feature = TOY_FEATURES[item % len(TOY_FEATURES)]
            text = (
                f"Arrived on time. The {feature} feels solid and does its job well.It was "
                f"a good buy for the price."
            )
            record = {
                "reviewerID": f"U{u}",
                "asin": f"B{item:04d}",
                "overall": float(rng.integers(1, 6)),
                "reviewText": text,
                "summary": "Works",
                "unixReviewTime": 1393545600 + 86400 * t + u,
            }
            lines.append(json.dumps(record))
    with gzip.open(folder / "reviews_Musical_Instruments_5.json.gz", "wt") as out:
        out.write("\n".join(lines) + "\n")
    return folder


def frame_of(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def movie_catalog() -> Catalog:
    """Six films, two of them sharing a title (Sabrina, 1954 and 1995)."""
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3", "4", "5", "6"],
            "title": [
                "Toy Story",
                "The Usual Suspects",
                "Seven (Se7en)",
                "Sabrina",
                "Sabrina",
                "Star Wars",
            ],
            "genres": [
                "Animation, Comedy",
                "Crime",
                "Thriller",
                "Romance",
                "Comedy",
                "War, Sci-Fi",
            ],
            "year": ["1995", "1995", "1995", "1954", "1995", "1977"],
        }
    )
    return Catalog("movies", items, popularity=np.array([50, 40, 30, 5, 9, 80]))


def product_catalog() -> Catalog:
    """Four beauty products with long names, two from one line (Seche Vite)."""
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": [
                "Seche Vite Dry Fast Top Nail Coat, 0.5 Ounce",
                "Seche Vite - Top Coat Set - .5 oz & 4 oz. Refill",
                "Bio-Oil, 2-Ounce Bottle",
                "Mary Kay Intense Moisturizing Cream (Dry Skin) for the face and neck",
            ],
            "categories": [
                "Beauty, Makeup, Nails, Top & Base Coats",
                "Beauty, Makeup, Nails, Top & Base Coats",
                "Beauty, Skin Care, Oils",
                "Beauty, Skin Care, Moisturizers",
            ],
        }
    )
    return Catalog("products", items, popularity=np.array([300, 20, 100, 3]))


class FixedIntent:
    """Stands in for the classifier: always the same intent, so each path is tested."""

    def __init__(self, intent: Intent) -> None:
        self.config = ClassifierConfig()
        self.intent = intent

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def predict(self, texts: list[str]) -> torch.Tensor:
        probs = torch.zeros(len(texts), len(INTENTS))
        probs[:, INTENTS.index(self.intent.value)] = 1.0
        return probs


def teacher_run(tmp_path: Path, family: str = "bert") -> Path:
    """A finished RecLLM-Adapter run on the toy data with a tiny ``family`` backbone."""
    data = write_toy_movielens(tmp_path / "ml-toy")
    backbone = save_tiny_model(tmp_path / f"tiny-{family}", family)
    raw = {
        "output_dir": str(tmp_path / "teacher"),
        "data": {
            "dataset": str(data),
            "cache_dir": str(tmp_path / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "backbone": {"name_or_path": str(backbone), "finetune": "full"},
        "adapter": {"d_model": 16, "n_heads": 4, "max_len": 8, "use_user_vector": True},
        "encoder": {"n_tokens": 4, "max_length": 16},
        "trainer": {
            "loss": "ce",
            "epochs": 3,
            "batch_size": 8,
            "lr": 0.01,
            "progress": False,
            "tensorboard": False,
        },
    }
    recipe = TrainRecipe(from_dict(TrainConfig, raw))
    recipe.setup()
    recipe.train()
    recipe.cleanup()
    return Path(raw["output_dir"])


def toy_distill_raw(teacher: Path, out: Path, **sections: dict) -> dict:
    """A tiny student's distillation config (as a dict) for ``teacher``; ``sections``
    update its sections."""
    raw = {
        "teacher": str(teacher),
        "output_dir": str(out),
        "student": {
            "layers": 1,
            "hidden": 16,
            "heads": 2,
            "intermediate": 32,
            "d_model": 8,
            "adapter_heads": 2,
        },
        "distill": {"top_k": 5},
        "pre": {"epochs": 1, "sequences": 12, "length": 5},
        "trainer": {
            "epochs": 2,
            "batch_size": 8,
            "lr": 0.01,
            "progress": False,
            "tensorboard": False,
        },
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw
