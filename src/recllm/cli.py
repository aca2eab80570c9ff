"""The ``recllm`` command line: a thin layer over recipes and data functions.

Every error a user can cause (a bad file, an unknown name, a bad option) is printed
as one line and exits with status 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recllm import __version__
from recllm.errors import RecLLMError

EXIT_USAGE = 2
OVERRIDABLE = (
    "quickstart",
    "train",
    "train-router",
)  # commands that take key=value config overrides


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding the datasets (default: $RECLLM_DATA_DIR or ~/.cache/recllm/data)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="folder for parsed caches (default: $RECLLM_CACHE_DIR or ~/.cache/recllm/cache)",
    )


def _privacy_options(parser: argparse.ArgumentParser) -> None:
    """``bench privacy``: how many pairs and requests the attacks use."""
    parser.add_argument(
        "--pairs", type=int, default=1000, help="privacy: members (and non-members) attacked"
    )
    parser.add_argument(
        "--attack-k", type=int, default=100, help="privacy: list length the attacker asks for"
    )
    parser.add_argument(
        "--aux-queries",
        type=int,
        default=2000,
        help="privacy: auxiliary histories sent to distil the shadow model",
    )
    parser.add_argument(
        "--shadow-epochs", type=int, default=20, help="privacy: shadow model training epochs"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=600,
        help="privacy: requests one attacker may send (in process: the rate-limit row; over "
        "HTTP: per attack and service configuration)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=60,
        help="privacy over HTTP: the served rate limit tried (requests a minute per client)",
    )
    parser.add_argument("--seed", type=int, default=0, help="privacy: pair sampling and shadow")


def _run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run a training recipe (train, distill)."""
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in output_dir"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run in output_dir"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="also write RESULTS_DIR/<dataset>/<name>.json (for benchmarks)",
    )
    parser.add_argument(
        "--name", default=None, help="model name in the results file (default: the config's model)"
    )


def cmd_quickstart(args: argparse.Namespace) -> int:
    from recllm.recipes.quickstart import QuickstartConfig, run_quickstart

    run_quickstart(
        QuickstartConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            output=args.output,
            progress=not args.quiet,
            download=args.download,
            overrides=args.overrides,
            bundle=None if args.no_bundle else args.bundle,
        )
    )
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from recllm.data.loaders.tabular import ColumnMap
    from recllm.data.preprocess import PreprocessConfig, preprocess
    from recllm.data.registry import load_dataset
    from recllm.data.stats import dataset_stats

    columns = ColumnMap.parse(args.columns) if args.columns else None
    dataset = load_dataset(args.source, args.data_dir, args.cache_dir, columns=columns)
    if args.k_core is not None:
        dataset = preprocess(
            dataset,
            PreprocessConfig(min_user_interactions=args.k_core, min_item_interactions=args.k_core),
        )
    stats = dataset_stats(dataset)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    seq = stats.pop("sequence_length")
    for key, value in stats.items():
        print(f"{key:>24}: {value:.6f}" if isinstance(value, float) else f"{key:>24}: {value}")
    print(f"{'sequence length':>24}: " + ", ".join(f"{k}={v:g}" for k, v in seq.items()))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from recllm import paths
    from recllm.data.download import download

    folder = download(
        args.name,
        paths.data_dir(args.data_dir),
        force=args.force,
        progress=not args.quiet,
        timeout=args.timeout,
    )
    print(f"{args.name} is ready in {folder}")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from recllm import paths
    from recllm.data.synth import SynthConfig, write_synthetic

    out = args.out or paths.data_dir(args.data_dir) / "synthetic-ml20m"
    config = SynthConfig(
        n_users=args.users, n_items=args.items, n_interactions=args.interactions, seed=args.seed
    )
    write_synthetic(config, out)
    print(f"SYNTHETIC data written to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.recipes.train import TrainConfig, TrainRecipe

    config = from_dict(TrainConfig, apply_overrides(load_yaml(args.config), args.overrides))
    if args.data_dir:
        config.data.data_dir = str(args.data_dir)
    return _run_recipe(TrainRecipe(config, resume=args.resume, overwrite=args.overwrite), args)


def cmd_distill(args: argparse.Namespace) -> int:
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.distill.config import DistillConfig
    from recllm.distill.recipe import DistillRecipe

    config = from_dict(DistillConfig, apply_overrides(load_yaml(args.config), args.overrides))
    recipe = DistillRecipe(
        config, resume=args.resume, overwrite=args.overwrite, data_dir=args.data_dir
    )
    return _run_recipe(recipe, args)


def _run_recipe(recipe: Any, args: argparse.Namespace) -> int:
    """Set up, train, test the best epoch; write ``results.json`` (and the results file)."""
    from recllm import distributed
    from recllm.eval.report import metrics_table
    from recllm.provenance import write_json

    config = recipe.config
    try:
        recipe.setup()
        try:
            state = recipe.train()
            result = recipe.test_best()
        finally:
            recipe.cleanup()
        record = recipe.results(result)
    finally:
        distributed.shutdown()  # under torchrun; nothing for one process
    if not recipe.world.is_main:
        return 0  # rank 0 alone writes the results
    out = Path(config.output_dir) / "results.json"
    write_json(out, record)
    if args.results_dir:
        name = args.name or config.model
        write_json(Path(args.results_dir) / record["dataset"] / f"{name}.json", record)
    label = f"{config.model} (test, best epoch {state['best_epoch']})"
    print(metrics_table({label: result.metrics}))
    print(f"wrote {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recllm.eval.evaluator import EvalConfig, evaluate
    from recllm.eval.report import metrics_table
    from recllm.recipes.inference import load_run
    from recllm.recipes.models import make_scorer

    run = load_run(args.checkpoint, args.data_dir, progress=not args.quiet)
    result = evaluate(
        make_scorer(run.model), run.split, args.stage, EvalConfig(), progress=not args.quiet
    )
    print(metrics_table({f"{run.config.model} ({args.stage})": result.metrics}))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from recllm.bundle.format import is_bundle
    from recllm.recipes.inference import (
        load_run,
        recommend,
        require_positive_k,
        resolve_items,
        user_history,
    )

    require_positive_k(args.k)  # before anything is loaded
    if args.history is not None and args.user is not None:
        raise RecLLMError("give --user ID or --history ITEM,ITEM,..., not both")
    if is_bundle(args.checkpoint):
        from recllm.cli_serve import recommend_from_bundle

        return recommend_from_bundle(args)
    run = load_run(args.checkpoint, args.data_dir, progress=False)
    weights = None  # an explicit --history counts every item fully
    user = None
    if args.history is not None:
        history = resolve_items(run, [h for h in args.history.split(",") if h.strip()])
    elif args.user is not None:
        hint = "; for someone not in the data, give --history ITEM,ITEM,..."
        user, history, weights = user_history(run, args.user, hint)
    else:
        raise RecLLMError("give --user ID or --history ITEM,ITEM,...")
    max_len = getattr(run.model, "max_len", None)  # user-embedding models read no history
    if max_len is not None and len(history) > max_len:
        logging.getLogger("recllm").info(
            "history has %d items; the model reads the most recent %d", len(history), max_len
        )
    titles = run.dataset.items.get("title")
    for rank, (item, score) in enumerate(recommend(run, history, args.k, weights, user), start=1):
        raw = run.dataset.items["item_id"].iloc[item]
        title = titles.iloc[item] if titles is not None else ""
        print(f"{rank:>3}. {raw:<12} {score:8.3f}  {title}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from recllm.docgen import refresh_docs
    from recllm.report import build_report

    print(f"wrote {build_report(args.results_dir, args.out)}")
    docs = refresh_docs(args.results_dir, build_parser())  # docs tables, CLI page, README
    if docs:
        print(f"wrote {len(docs)} docs files under {docs[0].parent} and the README's tables")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.name == "accuracy":
        from recllm.bench.accuracy import run
        from recllm.eval.report import metrics_table

        if not args.dataset:
            raise RecLLMError("bench accuracy needs --dataset NAME (e.g. ml-100k, amazon-beauty)")
        results = run(args)
        print(metrics_table({f"{name} (test)": metrics for name, metrics in results.items()}))
        return 0
    from recllm.bench import run_benchmark

    run_benchmark(args.name, args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recllm", description="RecLLM-Adapter: LM-based recommendation"
    )
    parser.add_argument("--version", action="version", version=f"recllm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser(
        "quickstart", help="load the default dataset, fit a baseline, print metrics"
    )
    quick.add_argument(
        "--dataset", default="ml-100k", help="dataset name or path (default: ml-100k)"
    )
    quick.add_argument(
        "--output", type=Path, default=None, help="also write the results as JSON here"
    )
    quick.add_argument("--quiet", action="store_true", help="no progress bars")
    quick.add_argument(
        "--bundle",
        type=Path,
        default=Path("runs/quickstart-bundle"),
        help="where to write the servable bundle (default runs/quickstart-bundle)",
    )
    quick.add_argument(
        "--no-bundle",
        action="store_true",
        help="stop after the evaluation: no router, explainer or bundle",
    )
    quick.add_argument(
        "--download",
        action="store_true",
        help="download the dataset first if it is missing (needs internet)",
    )
    _data_options(quick)
    quick.set_defaults(func=cmd_quickstart, overrides=[])

    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True
    )
    stats = data.add_parser("stats", help="users, items, interactions, density, sequence lengths")
    stats.add_argument("source", help="dataset name (e.g. ml-100k) or path to a folder/file")
    stats.add_argument(
        "--columns",
        default=None,
        help="for plain CSV/Parquet: KEY=COLUMN pairs, e.g. user_id=uid,item_id=iid,timestamp=ts",
    )
    stats.add_argument("--k-core", type=int, default=None, help="apply k-core filtering first")
    stats.add_argument("--json", action="store_true", help="print JSON")
    _data_options(stats)
    stats.set_defaults(func=cmd_data_stats)

    down = data.add_parser("download", help="download an official dataset (needs internet)")
    down.add_argument("name", help="dataset name, e.g. ml-1m")
    down.add_argument("--force", action="store_true", help="download again even if present")
    down.add_argument(
        "--timeout", type=float, default=15.0, help="seconds before a silent connection fails"
    )
    down.add_argument("--quiet", action="store_true", help="no progress bar")
    _data_options(down)
    down.set_defaults(func=cmd_data_download)

    synth = data.add_parser(
        "synth", help="generate a SYNTHETIC MovieLens-20M-shaped dataset (scale tests only)"
    )
    synth.add_argument(
        "--out", type=Path, default=None, help="output folder (default: DATA_DIR/synthetic-ml20m)"
    )
    synth.add_argument("--users", type=int, default=138_493)
    synth.add_argument("--items", type=int, default=26_744)
    synth.add_argument("--interactions", type=int, default=20_000_263)
    synth.add_argument("--seed", type=int, default=0)
    _data_options(synth)
    synth.set_defaults(func=cmd_data_synth)

    train = commands.add_parser("train", help="train RecLLM-Adapter from a YAML config")
    train.add_argument("config", type=Path, help="YAML config, e.g. configs/ml-100k.yaml")
    train.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. trainer.lr=3e-4 adapter.d_model=128"
    )
    _run_options(train)
    train.set_defaults(func=cmd_train, overrides=[])

    distill = commands.add_parser(
        "distill", help="distil a trained RecLLM-Adapter (the teacher) into a small student"
    )
    distill.add_argument("config", type=Path, help="YAML config, e.g. configs/distill/ml-100k.yaml")
    distill.add_argument(
        "overrides",
        nargs="*",
        help="key=value overrides, e.g. distill.temperature=1 student.layers=3",
    )
    _run_options(distill)
    distill.set_defaults(func=cmd_distill, overrides=[])

    evaluate = commands.add_parser("evaluate", help="full-ranking metrics of a trained run")
    evaluate.add_argument("checkpoint", type=Path, help="the output_dir of `recllm train`")
    evaluate.add_argument("--stage", choices=["valid", "test"], default="test")
    evaluate.add_argument("--json", action="store_true", help="also print the full result as JSON")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.add_argument("--data-dir", type=Path, default=None)
    evaluate.set_defaults(func=cmd_evaluate)

    rec = commands.add_parser("recommend", help="top-k items for a user or a given history")
    rec.add_argument("checkpoint", type=Path, help="the output_dir of `recllm train`, or a bundle")
    rec.add_argument("--user", default=None, help="raw user id from the dataset")
    rec.add_argument("--history", default=None, help="comma-separated raw item ids, oldest first")
    rec.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    rec.add_argument("--data-dir", type=Path, default=None)
    rec.set_defaults(func=cmd_recommend)

    from recllm.cli_routing import add_parsers as add_routing_parsers
    from recllm.cli_serve import add_parsers as add_serving_parsers

    add_routing_parsers(commands)
    add_serving_parsers(commands)

    bench = commands.add_parser("bench", help="benchmarks that write JSON under results/")
    bench.add_argument(
        "name",
        choices=[
            "accuracy",
            "cache",
            "batching",
            "scale",
            "memory-plan",
            "routing",
            "constraints",
            "explain",
            "distill",
            "serve",
            "privacy",
        ],
        help="which benchmark",
    )
    bench.add_argument(
        "target",
        nargs="?",
        default=None,
        metavar="RUN_OR_BUNDLE",
        help="privacy: a training run (attacked in this process) or a bundle (served on "
        "loopback and attacked over HTTP; give --checkpoint RUN, the run it came from)",
    )
    bench.add_argument("--results-dir", type=Path, default=Path("results"), help="where JSON goes")
    bench.add_argument("--datasets", nargs="+", default=None, help="datasets to run on")
    bench.add_argument("--dataset", default=None, help="accuracy: the dataset (config name)")
    bench.add_argument(
        "--models",
        nargs="+",
        default=[
            "popularity",
            "zero-shot-lm",
            "bpr-mf",
            "lightgcn",
            "sasrec-bce",
            "sasrec-ce",
            "generic-lora",
            "full-finetune",
            "recllm-adapter",
        ],
        help="accuracy: which models, in order",
    )
    bench.add_argument(
        "--configs",
        type=Path,
        default=Path("configs"),
        help="accuracy, memory-plan: folder of YAML configs",
    )
    bench.add_argument(
        "--runs-dir", type=Path, default=Path("runs/bench"), help="accuracy: training output"
    )
    bench.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="accuracy, scale: overrides for every trained model (e.g. trainer.num_threads=1)",
    )
    bench.add_argument(
        "--lr-factors",
        nargs="+",
        type=float,
        default=None,
        metavar="F",
        help="accuracy: search each trained model's learning rate over its config's value "
        "times each factor (e.g. 0.5 1 2); the best validation NDCG@10 is kept",
    )
    bench.add_argument(
        "--extend-edges",
        type=int,
        default=0,
        metavar="N",
        help="accuracy: when the best rate is the lowest or highest tried, try one more step "
        "past it (the grid's ratio at that end), up to N steps (default 0: never)",
    )
    bench.add_argument(
        "--reuse-from",
        nargs="+",
        type=Path,
        default=[],
        metavar="RESULTS_DIR",
        help="accuracy: also reuse the trial records kept under these results folders (e.g. "
        "results/ideas) when one trains exactly what a trial would, whatever its model's name",
    )
    bench.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="S",
        help="accuracy: train each model on these seeds (the learning rate searched on the "
        "first); the results file holds the mean, the standard deviation and each seed",
    )
    bench.add_argument(
        "--router", type=Path, default=Path("runs/router"), help="routing: trained router folder"
    )
    bench.add_argument(
        "--queries",
        type=Path,
        default=Path("tests/fixtures/routing/handwritten.jsonl"),
        help="routing: labelled queries (JSON lines)",
    )
    bench.add_argument(
        "--repeats", type=int, default=3, help="routing, distill: timing passes over the requests"
    )
    bench.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="constraints: a trained run's output_dir; distill: the teacher's",
    )
    bench.add_argument(
        "--students",
        nargs="+",
        default=[],
        metavar="NAME=RUN",
        help="distill: student runs, one named 'distilled' (e.g. distilled=runs/distill/ml-100k "
        "alone=runs/distill/ml-100k-alone)",
    )
    bench.add_argument(
        "--threads", type=int, default=1, help="distill: torch threads of each served model"
    )
    bench.add_argument(
        "--training-steps",
        type=int,
        default=20,
        help="scale: timed training steps per model and process count (0: no training section)",
    )
    bench.add_argument(
        "--processes",
        nargs="+",
        type=int,
        default=[1, 2],
        help="scale: process counts of the training section (torchrun, one thread each)",
    )
    bench.add_argument(
        "--gpus", type=int, default=8, help="memory-plan: GPUs the paper setting trains on"
    )
    bench.add_argument(
        "--explainer", type=Path, default=None, help="explain: a trained explainer folder"
    )
    bench.add_argument(
        "--method", choices=["greedy", "beam", "sample"], default="greedy", help="explain: decoding"
    )
    bench.add_argument(
        "--latency-pairs", type=int, default=200, help="explain: pairs timed one at a time"
    )
    bench.add_argument("--bundle", type=Path, default=None, help="serve: the bundle to serve")
    bench.add_argument(
        "--requests",
        type=int,
        default=1000,
        help="serve: requests per endpoint and concurrency (1000: ten above the p99)",
    )
    bench.add_argument(
        "--concurrency", nargs="+", type=int, default=[1, 16], help="serve: concurrent clients"
    )
    bench.add_argument(
        "--endpoints",
        nargs="+",
        choices=["recommend", "explain", "ask"],
        default=["recommend", "explain", "ask"],
        help="serve: endpoints to drive",
    )
    bench.add_argument(
        "--max-seconds", type=float, default=120.0, help="serve: time limit of each load level"
    )
    bench.add_argument(
        "--workers", type=int, default=1, help="serve: worker processes of the service"
    )
    bench.add_argument(
        "--label",
        default=None,
        help="serve, privacy: results file name (default: the dataset; privacy over HTTP: "
        "<dataset>-http)",
    )
    bench.add_argument(
        "--split",
        action="store_true",
        help="serve: run a rank service calling an explain service (serve --role rank/explain) "
        "and time the hop between them",
    )
    _privacy_options(bench)
    _data_options(bench)
    bench.set_defaults(func=cmd_bench)

    report = commands.add_parser("report", help="Markdown report with tables and plots")
    report.add_argument("--results-dir", type=Path, default=Path("results"), help="results to read")
    report.add_argument(
        "--out", type=Path, default=Path("results/report"), help="folder for report.md and plots"
    )
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may follow options ("--data-dir X trainer.lr=1e-3"), which
    # argparse does not match to a nargs="*" positional on its own.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command in OVERRIDABLE and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*(getattr(args, "overrides", None) or []), *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="recllm: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # one INFO line per call of the rank service's hop is noise
        logging.getLogger("httpx").setLevel(logging.WARNING)
    from recllm.progress import quiet_library_bars

    quiet_library_bars()  # a log gets no per-batch lines (issue 28)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RecLLMError as exc:
        print(f"recllm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("recllm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
