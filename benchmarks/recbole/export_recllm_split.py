"""Export recllm's preprocessed ML-100K as RecBole atomic files, for the RecBole cross-check.

Run with the project's environment (recllm installed), not the RecBole venv:

    python benchmarks/recbole/export_recllm_split.py [--data-dir ../shared/data]

Loads the data with recllm's own loader and preprocessing (default
``PreprocessConfig``: de-duplication, 5-core users and items, chronological order) and
writes, under ``benchmarks/recbole/data/<name>/`` (git-ignored):

* ``<name>.inter``: ``user_id:token item_id:token rating:float timestamp:float``, raw
  GroupLens ids, rows in recllm's chronological order: by user, then timestamp, then
  original file row. RecBole's ``eval_args.order: TO`` sorts all rows by timestamp with a
  *stable* sort (``np.argsort(kind="stable")`` in ``Interaction.sort``) and then groups
  rows by user keeping their order, so among equal timestamps it keeps the file order, i.e.
  exactly our tie-break. Its timestamps are float32 (after min-max normalisation with the
  ML-100K settings) and can merge timestamps about a second apart; rounding is monotonic,
  so with rows already in our order this cannot reorder them either. ``run.py`` checks the
  resulting split against ``<name>.targets.tsv``.
* ``<name>.targets.tsv``: recllm's leave-one-out targets (``user_id valid_item test_item``,
  raw ids) from ``recllm.data.splits.split`` with the default ``SplitConfig``.
* ``<name>.export.json``: counts, source files and the commit, for the results file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recllm.data.preprocess import PreprocessConfig, preprocess
from recllm.data.registry import load_dataset
from recllm.data.splits import SplitConfig, split

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _args() -> argparse.Namespace:
    env = os.environ.get("RECLLM_DATA_DIR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    )
    parser.add_argument("--dataset", default="ml-100k", help="recllm dataset name or path")
    parser.add_argument(
        "--name", default=None, help="RecBole dataset name (default: <dataset>-recllm)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "data", help="RecBole data_path")
    return parser.parse_args()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


def main() -> int:
    args = _args()
    name = args.name or f"{args.dataset}-recllm"
    raw = load_dataset(args.dataset, args.data_dir)
    config = PreprocessConfig()
    data = preprocess(raw, config)
    frame = data.interactions  # already chronological: (user, timestamp, file row)

    user_raw = np.asarray(data.user_ids).astype(str)
    item_raw = data.items["item_id"].astype(str).to_numpy()
    ts = frame["timestamp"]
    if ts.isna().any():
        raise SystemExit(f"{name}: {int(ts.isna().sum())} interactions lack a timestamp")
    out = pd.DataFrame(
        {
            "user_id:token": user_raw[frame["user"].to_numpy()],
            "item_id:token": item_raw[frame["item"].to_numpy()],
            # ratings are whole stars in ML-100K; NaN (unknown) would be written empty
            "rating:float": frame["rating"].astype("float64"),
            "timestamp:float": ts.astype("int64"),
        }
    )
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    inter = folder / f"{name}.inter"
    out.to_csv(inter, sep="\t", index=False, float_format="%g")

    parts = split(data, SplitConfig())
    valid = parts.valid.set_index("user")["item"]
    test = parts.test.set_index("user")["item"]
    users = np.sort(test.index.to_numpy())
    targets = pd.DataFrame(
        {
            "user_id": user_raw[users],
            "valid_item": item_raw[valid.loc[users].to_numpy()],
            "test_item": item_raw[test.loc[users].to_numpy()],
        }
    )
    targets_path = folder / f"{name}.targets.tsv"
    targets.to_csv(targets_path, sep="\t", index=False)

    info = {
        "name": name,
        "source": args.dataset,
        "data_dir": os.path.relpath(args.data_dir.resolve(), REPO_ROOT),  # no machine paths
        "preprocess": vars(config),
        "split": parts.summary(),
        "users": int(data.n_users),
        "items": int(data.n_items),
        "interactions": int(data.n_interactions),
        "dataset_info": {k: v for k, v in data.info.items() if k != "preprocess"},
        "inter_file": inter.name,
        "inter_sha256": _sha256(inter),
        "targets_file": targets_path.name,
        "recllm_commit": _commit(),
    }
    (folder / f"{name}.export.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    print(
        f"{inter}: {info['users']} users, {info['items']} items, "
        f"{info['interactions']} interactions; split {parts.summary()}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
