"""Training under torch.distributed (gloo, 2 CPU processes) against one process.

The same global batch on 1 and 2 processes gives the same loss curve and final weights
within TOLERANCE (only the order of floating-point sums differs: the gradient of a
global batch is the all-reduced sum of two halves); an interrupted 2-process run resumes
bit-identically; a sharded (DCP) checkpoint written by 2 FSDP processes resumes on 1.
The losses are full-softmax cross-entropy without dropout, so no random draw differs
between ranks (sampled negatives and dropout masks are drawn per rank).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from dist_helpers import spawn
from helpers import tiny_bert_tokenizer, tiny_hf_config, write_toy_movielens
from safetensors.torch import load_file, save_file

from recllm.config import from_dict, to_dict
from recllm.recipes.checkpoint import trainable_state
from recllm.recipes.train import TrainConfig, TrainRecipe

# Adam normalises each step, so sum-order differences (~1e-7) stay of that order.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def comparable(name: str, value: torch.Tensor) -> torch.Tensor:
    """The part of a weight whose gradient is not zero in exact arithmetic. Attention
    key biases add the same amount to every key of a query, which softmax ignores: their
    gradient is pure rounding noise, which Adam scales up to steps of ``lr``, so they
    drift apart in any two runs that sum in another order (1 vs 2 processes)."""
    if name.endswith("key.bias"):
        return value[:0]
    if name.endswith("in_proj_bias"):  # (query, key, value) biases of nn.MultiheadAttention
        third = len(value) // 3
        return torch.cat([value[:third], value[2 * third :]])
    return value


EPOCHS = 3


def config_dict(root: Path, out: str, **trainer) -> dict:
    """A tiny RecLLM-Adapter run on toy data, with nothing random in its loss."""
    data = write_toy_movielens(root / "ml-toy")
    backbone = root / "tiny-bert"
    if not backbone.exists():
        from transformers import AutoModel

        hf = tiny_hf_config("bert")
        hf.hidden_dropout_prob = hf.attention_probs_dropout_prob = 0.0
        torch.manual_seed(0)
        AutoModel.from_config(hf).save_pretrained(backbone)
        tiny_bert_tokenizer().save_pretrained(backbone)
    raw = {
        "output_dir": str(root / out),
        "data": {
            "dataset": str(data),
            "cache_dir": str(root / "cache"),
            "preprocess": {"min_user_interactions": 0, "min_item_interactions": 0},
        },
        "backbone": {"name_or_path": str(backbone), "finetune": "full"},
        "adapter": {"d_model": 16, "n_heads": 4, "max_len": 8, "dropout": 0.0},
        "encoder": {"n_tokens": 4, "max_length": 16},
        "trainer": {
            "epochs": EPOCHS,
            "batch_size": 8,
            "lr": 0.01,
            "loss": "ce",
            "progress": False,
            "tensorboard": False,
            "patience": 10,
            "num_threads": 1,
            **trainer,
        },
    }
    return to_dict(from_dict(TrainConfig, raw))


def train(rank: int, raw: dict, out: str, resume: bool = False, until: int | None = None) -> None:
    """Train (in one process of a world, or alone) and let rank 0 write what it ended with."""
    recipe = TrainRecipe(from_dict(TrainConfig, raw), resume=resume)
    recipe.setup()
    recipe.train(until)
    weights = trainable_state(recipe.model)  # whole on every rank (DDP) ...
    if recipe.world.world_size > 1 and raw["trainer"]["strategy"] == "fsdp":
        weights = {k: getattr(v, "full_tensor", lambda v=v: v)() for k, v in weights.items()}
    recipe.cleanup()
    if rank == 0:
        save_file(weights, out + ".safetensors")
        Path(out + ".json").write_text(json.dumps(recipe.state["history"]))


def outcome(out: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    return load_file(str(out) + ".safetensors"), json.loads(Path(str(out) + ".json").read_text())


def assert_close_runs(a: Path, b: Path, exact: bool = False) -> None:
    (wa, ha), (wb, hb) = outcome(a), outcome(b)
    assert [h["epoch"] for h in ha] == [h["epoch"] for h in hb] == list(range(1, EPOCHS + 1))
    for x, y in zip(ha, hb, strict=True):
        if exact:
            assert x["loss"] == y["loss"] and x["valid"] == y["valid"]
        else:
            assert x["loss"] == pytest.approx(y["loss"], rel=TOLERANCE["rtol"])
            for k, v in x["valid"].items():
                assert v == pytest.approx(y["valid"][k], abs=1e-3), k
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        if exact:
            assert torch.equal(wa[name], wb[name]), name
        else:
            x, y = comparable(name, wa[name]), comparable(name, wb[name])
            torch.testing.assert_close(x, y, **TOLERANCE, msg=name)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ddp")


@pytest.fixture(scope="module")
def one_process(root: Path) -> Path:
    """The reference: the run in this process, no process group."""
    train(0, config_dict(root, "single"), str(root / "single"))
    return root / "single"


@pytest.fixture(scope="module")
def two_processes(root: Path) -> Path:
    """The same run in 2 processes (DDP), uninterrupted."""
    spawn(train, 2, config_dict(root, "ddp"), str(root / "ddp"))
    return root / "ddp"


def test_two_processes_train_like_one(root: Path, one_process: Path, two_processes: Path) -> None:
    assert_close_runs(one_process, two_processes)
    # rank 0 alone wrote the checkpoints, with both ranks' RNG states
    rng = load_file(str(root / "ddp" / "checkpoints" / f"epoch-{EPOCHS}" / "rng.safetensors"))
    assert set(rng) == {"torch", "generator", "torch.1", "generator.1"}
    assert not torch.equal(rng["generator"], rng["generator.1"])  # ranks draw apart


def test_an_interrupted_two_process_run_resumes_exactly(root: Path, two_processes: Path) -> None:
    spawn(train, 2, config_dict(root, "resumed"), str(root / "first"), False, 1)
    spawn(train, 2, config_dict(root, "resumed"), str(root / "resumed"), True)
    assert [h["epoch"] for h in outcome(root / "first")[1]] == [1]
    assert_close_runs(two_processes, root / "resumed", exact=True)


def test_fsdp_checkpoint_of_two_processes_resumes_on_one(root: Path, one_process: Path) -> None:
    raw = config_dict(root, "fsdp", strategy="fsdp")
    spawn(train, 2, raw, str(root / "fsdp-first"), False, 1)
    checkpoint = root / "fsdp" / "checkpoints" / "epoch-1"
    shards = sorted(p.name for p in (checkpoint / "sharded").iterdir())
    assert len([s for s in shards if s.endswith(".safetensors")]) == 2  # one per rank
    train(0, raw, str(root / "fsdp-resumed"), resume=True)  # one process, no group
    assert_close_runs(one_process, root / "fsdp-resumed")
