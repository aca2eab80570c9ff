"""Train and evaluate one RecBole 1.2.1 model on ML-100K with this project's protocol.

Run with the RecBole environment made by ``benchmarks/recbole/setup.sh``:

    .venv-recbole/bin/python benchmarks/recbole/run.py --model BPR --variant recbole
    .venv-recbole/bin/python benchmarks/recbole/run.py --model Pop --variant recllm

Protocol (as recllm's): leave-one-out per user in time order (RecBole ``eval_args``
``split: {LS: valid_and_test}, order: TO, group_by: user, mode: full``), full-catalogue
ranking with the user's earlier items masked, Recall@10/20 and NDCG@10/20, early stopping
on validation NDCG@10 (``stopping_step`` evaluations without improvement, RecBole's
default 10; ``--budget-minutes`` also stops at the first validation past a wall time),
``MAX_ITEM_LIST_LENGTH: 50``, a fixed seed, RecBole's default
hyper-parameters otherwise (``--set key=value`` changes any of them).

Data variants (``--variant``):

* ``recbole``: RecBole's own ML-100K as shipped in its wheel
  (``recbole/dataset_example/ml-100k``), with its ``ml-100k.yaml`` settings: no filtering,
  no de-duplication (943 users, 1,682 items, 100,000 interactions).
* ``recllm``: the project's preprocessed data (de-duplicated, 5-core, chronological),
  exported beforehand with the *project's* environment by
  ``python benchmarks/recbole/export_recllm_split.py``. Same dataset settings as above.

The test split RecBole builds is checked against the chronological order of the
``.inter`` file by (user, timestamp, file row), and for ``recllm`` against the targets of
recllm's own split (``split_check`` in the results file).

The best validation epoch is evaluated on the test split: RecBole saves it as a
checkpoint, which torch >= 2.6 refuses to read with ``torch.load``'s default
``weights_only=True`` (the file holds RecBole's Config object). This script therefore
calls ``trainer.evaluate(..., load_best_model=False)`` after loading that checkpoint itself
with ``weights_only=False`` (a file this process has just written); site-packages and the
global ``torch.load`` are left alone.

Writes ``results/recbole/ml-100k-<variant>/<model lower-case>.json``. RecBole's log,
tensorboard and checkpoint files go to a temporary folder that is removed at the end.

Long runs (SASRec takes minutes an epoch on a CPU) can span several calls with
``--resume-dir DIR``: after every validation the training state (weights, optimiser, early
stopping, curves, random generators) is written to ``DIR/last.pth`` and the best epoch to
``DIR/best.pth``; the same command again continues from the last validated epoch. Combined
with ``--budget-minutes``, each call tests the best epoch so far and writes the results file,
so an interrupted run always leaves a labelled, usable result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VARIANTS = ("recbole", "recllm")
METRIC_KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="BPR", help="RecBole model name (Pop, BPR, ...)")
    parser.add_argument("--variant", choices=VARIANTS, default="recbole", help="see the docstring")
    parser.add_argument(
        "--epochs",
        type=int,
        default=100,
        help="maximum epochs (early stopping may end sooner; RecBole runs Pop for 1)",
    )
    parser.add_argument("--stopping-step", type=int, default=10)
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="stop training after the first validation past this wall time and test the best "
        "epoch so far (the results file says so: stopped_by 'budget')",
    )
    parser.add_argument(
        "--resume-dir",
        type=Path,
        default=None,
        help="keep the training state here after every validation and continue from it when "
        "the same command runs again (see the docstring)",
    )
    parser.add_argument("--seed", type=int, default=2020, help="RecBole's default seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--gpu", action="store_true", help="use a GPU if torch sees one")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra RecBole setting, VALUE parsed as YAML (repeatable)",
    )
    parser.add_argument(
        "--data-path",
        type=Path,
        default=HERE / "data",
        help="folder holding ml-100k-recllm/ (variant recllm)",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "recbole")
    parser.add_argument(
        "--tag", default="", help="results file suffix: <model>-<tag>.json (for --set variants)"
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git(*cmd: str) -> str:
    out = subprocess.run(["git", *cmd], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def _settings(args: argparse.Namespace, data_path: Path | None, checkpoint_dir: Path) -> dict:
    import yaml

    config: dict[str, Any] = {
        # environment
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": args.gpu,
        "state": "WARNING" if args.quiet else "INFO",
        "show_progress": False,
        "checkpoint_dir": str(checkpoint_dir),
        # training
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        # evaluation: recllm's protocol
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "mode": "full",
            "group_by": "user",
        },
        # RecBole requires repeatable=True for sequential models; see _mask_history
        "repeatable": _is_sequential(args.model),
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        "valid_metric_bigger": True,
        "MAX_ITEM_LIST_LENGTH": 50,
        # dataset settings of RecBole's ml-100k.yaml, stated for both variants
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "rm_dup_inter": None,
        "val_interval": None,
        "filter_inter_by_user_or_item": True,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        "normalize_all": True,
    }
    if data_path is not None:
        config["data_path"] = str(data_path)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        config[key.strip()] = yaml.safe_load(value)
    return config


class _BudgetSpent(Exception):
    """Raised from the epoch callback once ``--budget-minutes`` has passed."""


TRAINED_OUT = "early stopping or max epochs"
# settings a resumed run may change: where files go, log level, the epoch limit
RESUMABLE_CHANGES = ("checkpoint_dir", "state", "epochs")


def _run_identity(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in RESUMABLE_CHANGES}


def _save_training_state(path: Path, trainer: Any, train_data: Any, extra: dict) -> None:
    """Everything needed to continue ``trainer.fit`` after the epoch just validated.

    Written atomically: a run killed mid-write keeps the previous state.
    """
    import random

    import numpy as np
    import torch

    state = {
        "cur_step": trainer.cur_step,
        "best_valid_score": trainer.best_valid_score,
        "best_valid_result": trainer.best_valid_result,
        "train_loss_dict": dict(trainer.train_loss_dict),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "train_loader": train_data.generator.get_state(),
        },
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_training_state(path: Path, trainer: Any, train_data: Any, settings: dict) -> dict:
    """Restore what ``_save_training_state`` wrote; the run's settings must be the same."""
    import random

    import numpy as np
    import torch

    # a file this script wrote into the user's own --resume-dir (see the module docstring)
    state = torch.load(path, map_location=trainer.device, weights_only=False)
    before, now = state["identity"], _run_identity(settings)
    if before != now:
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        raise SystemExit(
            f"{path} belongs to a run with other settings (differing: {', '.join(changed)}); "
            "use another --resume-dir or remove this one to start over"
        )
    if state["finished"]:
        raise SystemExit(
            f"{path} is a finished run ({state['finish_reason']}); its results file is already "
            "written. Remove the folder to train again"
        )
    trainer.start_epoch = state["epoch"] + 1
    trainer.cur_step = state["cur_step"]
    trainer.best_valid_score = state["best_valid_score"]
    trainer.best_valid_result = state["best_valid_result"]
    trainer.train_loss_dict = dict(state["train_loss_dict"])
    trainer.model.load_state_dict(state["state_dict"])
    trainer.model.load_other_parameter(state["other_parameter"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    train_data.generator.set_state(state["rng"]["train_loader"])
    return state


def _is_sequential(model_name: str) -> bool:
    from recbole.utils import ModelType, get_model

    return getattr(get_model(model_name), "type", None) == ModelType.SEQUENTIAL


def _needs_no_train_negatives(model_name: str, config: dict) -> bool:
    """Sequential models with a CE loss must have ``train_neg_sample_args: None``."""
    import recbole
    import yaml

    if "train_neg_sample_args" in config or not _is_sequential(model_name):
        return False
    defaults = Path(recbole.__file__).parent / "properties" / "model" / f"{model_name}.yaml"
    loss = config.get("loss_type")
    if loss is None and defaults.is_file():
        loss = (yaml.safe_load(defaults.read_text()) or {}).get("loss_type")
    return loss == "CE"


def _reference_targets(inter_path: Path) -> dict[str, tuple[str, str]]:
    """Last two items per user in (user, timestamp, file row) order: recllm's tie-break."""
    import pandas as pd

    frame = pd.read_csv(inter_path, sep="\t", dtype=str, usecols=[0, 1, 3])
    frame.columns = ["user", "item", "timestamp"]
    frame["ts"] = frame["timestamp"].astype(float).astype("int64")
    frame["row"] = range(len(frame))
    frame = frame.sort_values(["user", "ts", "row"], kind="stable")
    last = frame.groupby("user", sort=False).tail(2)
    out: dict[str, tuple[str, str]] = {}
    for user, group in last.groupby("user", sort=False):
        items = group["item"].tolist()
        if len(items) == 2:
            out[user] = (items[0], items[1])
    return out


def _recbole_targets(dataset: Any, valid_ds: Any, test_ds: Any) -> dict[str, tuple[str, str]]:
    uid, iid = dataset.uid_field, dataset.iid_field

    def pairs(ds: Any) -> dict[str, str]:
        users = dataset.id2token(uid, ds.inter_feat[uid].numpy())
        items = dataset.id2token(iid, ds.inter_feat[iid].numpy())
        return dict(zip(users.tolist(), items.tolist(), strict=True))

    valid, test = pairs(valid_ds), pairs(test_ds)
    return {u: (valid.get(u, ""), test[u]) for u in test}


def _history_masks(dataset: Any, valid_ds: Any, test_ds: Any) -> dict[str, Any]:
    """Per-stage ``[user_num, item_num]`` masks of the items a user had before the target.

    Validation: everything but the validation and test targets (= training); test:
    everything but the test target (= training + validation). Targets are never masked.
    """
    import torch

    uid, iid = dataset.uid_field, dataset.iid_field
    every = torch.zeros(dataset.user_num, dataset.item_num, dtype=torch.bool)
    users, items = dataset.inter_feat[uid].long(), dataset.inter_feat[iid].long()
    every[users, items] = True
    list_field = iid + dataset.config["LIST_SUFFIX"]
    if list_field in dataset.inter_feat:
        # a sequential dataset holds one row per target after augmentation; the first item
        # of each user is only in the input lists (id 0 pads them)
        lists = dataset.inter_feat[list_field].long()
        every[users.unsqueeze(1).expand_as(lists), lists] = True
        every[:, 0] = False
    masks = {}
    for stage, cleared in (("valid", (valid_ds, test_ds)), ("test", (test_ds,))):
        mask = every.clone()
        for ds in cleared:
            mask[ds.inter_feat[uid].long(), ds.inter_feat[iid].long()] = False
        masks[stage] = mask
    return masks


def _mask_history(trainer: Any, masks: dict[str, Any], loaders: dict[str, Any]) -> None:
    """Exclude history items from full-sort scores of a sequential model (recllm's protocol).

    RecBole masks the user's earlier items for general models (BPR, Pop, LightGCN) but not
    for sequential ones (``repeatable: True`` is required there and no history is passed
    to the scorer), so for those this wraps the trainer's full-sort step on this instance.
    """
    uid_field = trainer.config["USER_ID_FIELD"]
    state: dict[str, Any] = {"mask": None}
    evaluate, batch_eval = trainer.evaluate, trainer._full_sort_batch_eval

    def evaluate_with_mask(eval_data: Any, *args: Any, **kwargs: Any) -> Any:
        stage = next((s for s, loader in loaders.items() if loader is eval_data), None)
        state["mask"] = masks[stage] if stage else None
        try:
            return evaluate(eval_data, *args, **kwargs)
        finally:
            state["mask"] = None

    def batch_eval_with_mask(batched_data: Any) -> Any:
        interaction, scores, positive_u, positive_i = batch_eval(batched_data)
        if state["mask"] is not None:
            users = interaction[uid_field].long().cpu()
            scores[state["mask"][users].to(scores.device)] = float("-inf")
        return interaction, scores, positive_u, positive_i

    trainer.evaluate = evaluate_with_mask
    trainer._full_sort_batch_eval = batch_eval_with_mask


def _compare(got: dict[str, tuple[str, str]], want: dict[str, tuple[str, str]]) -> dict[str, int]:
    common = got.keys() & want.keys()
    return {
        "users_recbole": len(got),
        "users_reference": len(want),
        "users_in_both": len(common),
        "valid_target_differs": sum(got[u][0] != want[u][0] for u in common),
        "test_target_differs": sum(got[u][1] != want[u][1] for u in common),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _portable(value: Any, prefixes: list[tuple[str, str]]) -> Any:
    """``value`` with machine paths shortened: results files must not name this machine.

    ``prefixes`` maps absolute path prefixes to stand-ins (the repository becomes ``.``,
    the installed RecBole package ``<recbole>``), longest first."""
    if isinstance(value, dict):
        return {k: _portable(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, prefixes) for v in value]
    if isinstance(value, str):
        for prefix, stand_in in prefixes:
            value = value.replace(prefix, stand_in)
    return value


def main() -> int:
    args = _args()
    started = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    command = shlex.join([sys.executable, *sys.argv])
    data_root = args.data_path.resolve()
    out_dir = args.out.resolve() / f"ml-100k-{args.variant}"

    import numpy as np
    import pandas as pd
    import recbole
    import scipy
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_flops, get_model, get_trainer, init_logger, init_seed, set_color

    torch.set_num_threads(args.threads)
    # RecBole 1.2.1 under pandas 2.2 / torch 2.13: chained-assignment and amp deprecations
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")

    if args.variant == "recbole":
        dataset_name = "ml-100k"  # RecBole points data_path at its dataset_example copy
        inter_path = Path(recbole.__file__).parent / "dataset_example" / "ml-100k" / "ml-100k.inter"
        data_path = None
        export_info = None
    else:
        dataset_name = "ml-100k-recllm"
        folder = data_root / dataset_name
        inter_path = folder / f"{dataset_name}.inter"
        if not inter_path.is_file():
            raise SystemExit(
                f"{inter_path} is missing; export it with the project's environment:\n"
                f"  python {HERE.relative_to(REPO_ROOT)}/export_recllm_split.py --out {data_root}"
            )
        data_path = data_root
        export_info = json.loads((folder / f"{dataset_name}.export.json").read_text())
        if export_info.get("inter_sha256") != _sha256(inter_path):
            raise SystemExit(f"{inter_path} does not match its .export.json; export it again")

    resume_dir = args.resume_dir.resolve() if args.resume_dir is not None else None
    workdir = Path(tempfile.mkdtemp(prefix="recbole-run-"))
    old_cwd = Path.cwd()
    os.chdir(workdir)  # RecBole writes ./log, ./log_tensorboard and checkpoints here
    try:
        settings = _settings(args, data_path, resume_dir or workdir / "saved")
        if _needs_no_train_negatives(args.model, settings):
            settings["train_neg_sample_args"] = None
        # Config also reads ``--key=value`` words of sys.argv as settings; ours are not
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            config = Config(model=args.model, dataset=dataset_name, config_dict=settings)
        finally:
            sys.argv = argv
        # -- the same sequence as recbole.quick_start.run_recbole --
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        import logging

        logger = logging.getLogger()
        logger.info(command)
        logger.info(config)

        t0 = time.perf_counter()
        dataset = create_dataset(config)
        logger.info(dataset)
        # counted before the split: sequential datasets become one row per target later
        counts = {
            "users": int(dataset.user_num - 1),  # RecBole counts a padding id
            "items": int(dataset.item_num - 1),
            "interactions": int(dataset.inter_num),
        }
        train_data, valid_data, test_data = data_preparation(config, dataset)
        data_seconds = time.perf_counter() - t0

        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        logger.info(model)
        try:
            from recbole.data.transform import construct_transform

            flops = get_flops(model, dataset, config["device"], logger, construct_transform(config))
            logger.info(set_color("FLOPs", "blue") + f": {flops}")
        except Exception as error:  # FLOPs are informative only
            logger.warning(f"FLOPs not counted: {error}")
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        if _is_sequential(args.model):
            masks = _history_masks(dataset, valid_data._dataset, test_data._dataset)
            _mask_history(trainer, masks, {"valid": valid_data, "test": test_data})
            history_masking = "run.py (RecBole masks nothing for sequential models)"
        else:
            history_masking = "RecBole (full-sort history of general models)"

        curve: list[dict[str, float]] = []
        best = {"epoch": None}
        calls: list[dict[str, Any]] = []  # one entry per call of this script on the run
        previous_fit_seconds = 0.0
        if resume_dir is not None:
            resume_dir.mkdir(parents=True, exist_ok=True)
            trainer.saved_model_file = str(resume_dir / "best.pth")
            resume_file = resume_dir / "last.pth"
            if resume_file.is_file():
                state = _load_training_state(resume_file, trainer, train_data, settings)
                curve, best["epoch"], calls = state["curve"], state["best_epoch"], state["calls"]
                previous_fit_seconds = state["fit_seconds"]
                logger.info(f"resuming from {resume_file} after epoch {state['epoch']}")
        first_epoch = trainer.start_epoch

        t0 = time.perf_counter()
        budget_s = None if args.budget_minutes is None else 60.0 * args.budget_minutes

        def this_call(last_epoch: int, stopped_by: str) -> dict[str, Any]:
            seconds = round(time.perf_counter() - t0, 2)
            return {
                "first_epoch": first_epoch,
                "last_epoch": last_epoch,
                "fit_seconds": seconds,
                "threads": args.threads,
                "stopped_by": stopped_by,
            }

        def save_state(epoch_idx: int, stopped_by: str) -> None:
            call = this_call(epoch_idx, stopped_by)
            extra = {
                "identity": _run_identity(settings),
                "epoch": epoch_idx,
                "curve": curve,
                "best_epoch": best["epoch"],
                "fit_seconds": previous_fit_seconds + call["fit_seconds"],
                "calls": [*calls, call],
                "finished": stopped_by == TRAINED_OUT,
                "finish_reason": stopped_by,
            }
            _save_training_state(resume_dir / "last.pth", trainer, train_data, extra)

        def on_epoch(epoch_idx: int, valid_score: float) -> None:
            curve.append({"epoch": epoch_idx, "ndcg@10": float(valid_score)})
            if trainer.cur_step == 0:  # early_stopping just accepted this as the best
                best["epoch"] = epoch_idx
            # leave the last epoch and early stopping (cur_step past stopping_step) to RecBole
            spent = budget_s is not None and time.perf_counter() - t0 > budget_s
            spent = spent and trainer.cur_step <= trainer.stopping_step
            spent = spent and epoch_idx + 1 < trainer.epochs
            if resume_dir is not None:
                # "interrupted" stays on record if the process dies before the next save
                save_state(epoch_idx, "budget" if spent else "interrupted")
            if spent:
                raise _BudgetSpent

        stopped_by = TRAINED_OUT
        try:
            # with no epoch left, fit only saves the weights as they are: keep a best epoch
            if trainer.start_epoch < trainer.epochs or not Path(trainer.saved_model_file).exists():
                trainer.fit(
                    train_data, valid_data, saved=True, show_progress=False, callback_fn=on_epoch
                )
        except _BudgetSpent:
            stopped_by = "budget"
            logger.warning(
                f"wall budget of {args.budget_minutes} min spent: testing the best epoch"
            )
        best_valid_score, best_valid_result = trainer.best_valid_score, trainer.best_valid_result
        last_epoch = max(trainer.train_loss_dict, default=first_epoch - 1)
        if resume_dir is not None and stopped_by == TRAINED_OUT:
            save_state(last_epoch, stopped_by)  # a later call refuses to train it again
        calls = [*calls, this_call(last_epoch, stopped_by)]
        fit_seconds = previous_fit_seconds + calls[-1]["fit_seconds"]

        checkpoint_file = Path(trainer.saved_model_file)
        # own, just-written file: weights_only=False is safe (see the module docstring)
        checkpoint = torch.load(checkpoint_file, map_location=trainer.device, weights_only=False)
        trainer.model.load_state_dict(checkpoint["state_dict"])
        trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
        logger.info(f"Loaded the best validation epoch from {checkpoint_file}")
        t0 = time.perf_counter()
        test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        test_seconds = time.perf_counter() - t0
        logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
        logger.info(set_color("test result", "yellow") + f": {test_result}")

        reference = _reference_targets(inter_path)
        got = _recbole_targets(dataset, valid_data._dataset, test_data._dataset)
        split_check: dict[str, Any] = {
            "vs_user_timestamp_filerow_order": _compare(got, reference),
        }
        if export_info is not None:
            targets = pd.read_csv(
                inter_path.parent / export_info["targets_file"], sep="\t", dtype=str
            )
            recllm_targets = {
                r.user_id: (r.valid_item, r.test_item) for r in targets.itertuples(index=False)
            }
            split_check["vs_recllm_split"] = _compare(got, recllm_targets)

        wall = time.perf_counter() - started
        result = {
            "tool": "RecBole",
            "model": args.model,
            "variant": args.variant,
            "tag": args.tag,
            "settings": settings,
            "dataset": dataset_name,
            "test": {k: float(test_result[k]) for k in METRIC_KEYS},
            "valid_best": {
                "ndcg@10": float(best_valid_score) if best_valid_result else None,
                "epoch": best["epoch"],
                "metrics": {k: float(v) for k, v in (best_valid_result or {}).items()},
            },
            "epochs_run": len(trainer.train_loss_dict),
            "epochs_max": int(trainer.epochs),
            "stopped_early": len(trainer.train_loss_dict) < int(trainer.epochs),
            "stopped_by": stopped_by,
            "budget_minutes": args.budget_minutes,
            # calls of this script that trained the run (more than one with --resume-dir)
            "calls": calls,
            "valid_curve": curve,
            "train_loss": {str(k): float(v) for k, v in trainer.train_loss_dict.items()},
            "wall_seconds": round(wall, 2),
            "seconds": {
                "data": round(data_seconds, 2),
                "fit": round(fit_seconds, 2),
                "test": round(test_seconds, 2),
            },
            "dataset_stats": {
                **counts,
                # rows RecBole trains / evaluates on (targets, for sequential models)
                "train_interactions": int(train_data._dataset.inter_num),
                "valid_interactions": int(valid_data._dataset.inter_num),
                "test_interactions": int(test_data._dataset.inter_num),
                "inter_file": str(inter_path),
                "inter_sha256": _sha256(inter_path),
            },
            "split_check": split_check,
            "history_masking": history_masking,
            "export": export_info,
            "versions": {
                "recbole": recbole.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
            "threads": args.threads,
            "device": str(config["device"]),
            "command": command,
            "cwd": str(old_cwd),
            "git_commit": _git("rev-parse", "HEAD") or "unknown",
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": _jsonable(config.final_config_dict),
        }
    finally:
        os.chdir(old_cwd)
        shutil.rmtree(workdir, ignore_errors=True)

    prefixes = [
        (str(Path(recbole.__file__).resolve().parent), "<recbole>"),
        (str(REPO_ROOT.parent / "shared"), "../shared"),
        (str(REPO_ROOT), "."),
        (str(workdir), "<temporary folder, deleted>"),
    ]
    result = _portable(result, sorted(prefixes, key=lambda p: -len(p[0])))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.model.lower() + (f"-{args.tag}" if args.tag else "")
    out = out_dir / f"{stem}.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    t = result["test"]
    print(
        f"{args.variant} {args.model}: test R@10 {t['recall@10']:.4f} N@10 {t['ndcg@10']:.4f} "
        f"R@20 {t['recall@20']:.4f} N@20 {t['ndcg@20']:.4f}; best valid N@10 "
        f"{result['valid_best']['ndcg@10']} at epoch {best['epoch']}, {result['epochs_run']} epochs, "
        f"{wall:.1f} s -> {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
