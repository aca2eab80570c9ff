"""Full-ranking evaluation split across 2 processes (gloo) returns, on every rank,
metrics identical (==, not approximately) to one process's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from dist_helpers import spawn
from test_evaluator import make_split

from recllm import distributed
from recllm.data.sequences import UserSequences
from recllm.eval.evaluator import EvalConfig, evaluate

CONFIG = EvalConfig(batch_size=7)  # 5 batches of users for 2 ranks: uneven shares


def scores_of(users: np.ndarray, history: UserSequences, n_items: int) -> torch.Tensor:
    """Scores that depend on the user only (not on the batch), with ties."""
    rows = [
        torch.randint(0, 12, (n_items,), generator=torch.Generator().manual_seed(int(u)))
        for u in users
    ]
    return torch.stack(rows).float()


def evaluate_split(world: distributed.World) -> dict:
    s = make_split(n_users=33, protocol="cold_start")
    seen: list[int] = []

    def scorer(users: np.ndarray, history: UserSequences) -> torch.Tensor:
        seen.extend(int(u) for u in users)
        return scores_of(users, history, s.n_items)

    result = evaluate(scorer, s, "test", CONFIG, progress=False, world=world).to_dict()
    result.pop("seconds")
    return {"result": result, "scored": seen}


def worker(rank: int, out: str) -> None:
    world = distributed.init("cpu")
    Path(f"{out}-{rank}.json").write_text(json.dumps(evaluate_split(world)))


def test_sharded_evaluation_is_identical_to_one_process(tmp_path: Path) -> None:
    alone = evaluate_split(distributed.World())
    spawn(worker, 2, str(tmp_path / "rank"))
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert alone["result"]["groups"]  # cold and warm groups are gathered too
    for rank in ranks:
        assert rank["result"] == alone["result"]
    # each rank scored a disjoint, near-half share of the users
    shares = [set(r["scored"]) for r in ranks]
    assert not shares[0] & shares[1] and shares[0] | shares[1] == set(alone["scored"])
    assert abs(len(shares[0]) - len(shares[1])) <= CONFIG.batch_size
