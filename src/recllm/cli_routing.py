"""Command-line verbs for talking to a recommender: ``train-router``, ``route``, ``ask``,
``train-explainer`` and ``explain``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recllm.errors import RecLLMError

DEFAULT_ROUTER = Path("runs/router")


def cmd_train_router(args: argparse.Namespace) -> int:
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.recipes.router import RouterTrainConfig, train_router

    raw = load_yaml(args.config) if args.config else {}
    config = from_dict(RouterTrainConfig, apply_overrides(raw, args.overrides))
    if args.data_dir:
        config.data_dir = str(args.data_dir)
    record = train_router(config)
    for member in ("teacher", "student"):
        if member in record:
            figures = record[member]
            assert isinstance(figures, dict)
            print(f"{member}: held-out generated accuracy {figures['valid_accuracy']:.4f}")
    print(f"wrote {Path(config.output_dir) / 'router.json'} (serving: {record['serving']})")
    return 0


def read_queries(source: str) -> list[str]:
    """Queries from a file ('-': stdin): one per line, or JSON lines with a ``text`` field."""
    text = sys.stdin.read() if source == "-" else _read(Path(source))
    queries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecLLMError(f"{source}:{number}: not valid JSON ({exc})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise RecLLMError(f"{source}:{number}: a JSON line needs a string 'text' field")
            queries.append(row["text"])
        else:
            queries.append(line)  # blank lines too: they route to out_of_scope, one per line
    return queries


def _read(path: Path) -> str:
    if not path.is_file():
        raise RecLLMError(f"no such query file: {path}")
    return path.read_text(encoding="utf-8", errors="replace")


def cmd_route(args: argparse.Namespace) -> int:
    from recllm.routing.router import Router

    catalog = None
    if args.catalog:
        from recllm.recipes.router import load_catalogs

        catalog = load_catalogs([args.catalog], args.data_dir)[0]
    router = Router.load(args.router, catalog)
    queries = read_queries(args.input)
    for start in range(0, len(queries), 64):
        for route in router.route_many(queries[start : start + 64]):
            print(json.dumps(route.to_json(), ensure_ascii=False))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from recllm.bundle.format import is_bundle
    from recllm.recipes.inference import require_positive_k

    require_positive_k(args.k)  # before the run or bundle is loaded
    if is_bundle(args.checkpoint):
        from recllm.cli_serve import ask_from_bundle

        return ask_from_bundle(args)
    from recllm.recipes.ask import MINIMAL, Assistant, minimal_explanation
    from recllm.recipes.inference import load_run
    from recllm.routing.router import Router

    run = load_run(args.checkpoint, args.data_dir, progress=False)
    explainer = minimal_explanation
    if args.explainer is not None:
        from recllm.recipes.explain import Explainer, GeneratedExplanations

        generator = Explainer.load(args.explainer, args.data_dir)
        if generator.run.config.output_dir != run.config.output_dir:
            raise RecLLMError(
                f"the explainer {args.explainer} was trained for {generator.run.config.output_dir}, "
                f"not for {args.checkpoint}"
            )
        explainer = GeneratedExplanations(generator)
    assistant = Assistant(
        run, Router.load(args.router), default_k=args.k, mode=args.mode, explainer=explainer
    )
    answer = assistant.ask(args.query, args.user)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
        return 0
    route = answer.route
    print(f"intent: {route.intent.value} (confidence {route.confidence:.2f})")
    for rank, item in enumerate(answer.items, start=1):
        print(f"{rank:>3}. {item.item_id:<12} {item.score:8.3f}  {item.title}")
    for explanation in answer.explanations:
        marked = " [minimal]" if explanation.generator == MINIMAL else ""
        print(f"why{marked}: {explanation.text}")
    for note in answer.to_json()["notes"]:
        print(f"note: {note}")
    return 0


def cmd_train_explainer(args: argparse.Namespace) -> int:
    from recllm.config import apply_overrides, from_dict, load_yaml
    from recllm.recipes.explain import ExplainerTrainConfig, train_explainer

    raw = load_yaml(args.config) if args.config else {}
    raw = apply_overrides({**raw, "run_dir": str(args.run_dir)}, args.overrides)
    config = from_dict(ExplainerTrainConfig, raw)
    if args.data_dir:
        config.data_dir = str(args.data_dir)
    manifest = train_explainer(config)
    print(
        f"trained on {manifest['training_sentences']} sentences of {manifest['training_pairs']} "
        f"pairs; final L_gen {manifest['history'][-1]['loss_gen']}; wrote {config.output_dir}"
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from recllm.bundle.format import is_bundle

    if is_bundle(args.explainer):
        from recllm.cli_serve import explain_from_bundle

        return explain_from_bundle(args)
    from recllm.recipes.explain import Explainer, pair_for

    explainer = Explainer.load(args.explainer, args.data_dir)
    pair = pair_for(explainer, args.user, args.item)
    text = explainer.explain([pair], method=args.method, verify=not args.no_verify)[0]
    print(text)
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train-router", help="train the intent router on generated queries (teacher + student)"
    )
    train.add_argument("--config", type=Path, default=None, help="optional YAML config")
    train.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. per_intent=800 epochs=1"
    )
    train.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets")
    train.set_defaults(func=cmd_train_router, overrides=[])

    route = commands.add_parser(
        "route", help="classify queries: one per line (or JSONL with 'text') in, JSON lines out"
    )
    route.add_argument("input", nargs="?", default="-", help="query file ('-': stdin, default)")
    route.add_argument("--router", type=Path, default=DEFAULT_ROUTER, help="trained router folder")
    route.add_argument(
        "--catalog", default=None, help="dataset whose titles and genres fill the slots"
    )
    route.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets")
    route.set_defaults(func=cmd_route)

    ask = commands.add_parser(
        "ask", help="answer a query for a user: route it, then recommend and/or explain"
    )
    ask.add_argument("checkpoint", type=Path, help="the output_dir of `recllm train`, or a bundle")
    ask.add_argument("query", help='e.g. "anything like Toy Story?"')
    ask.add_argument("--user", required=True, help="raw user id in the run's dataset")
    ask.add_argument("--router", type=Path, default=DEFAULT_ROUTER, help="trained router folder")
    ask.add_argument("-k", type=int, default=10, help="items when the query says no number")
    ask.add_argument(
        "--mode",
        choices=["filter", "boost"],
        default="filter",
        help="genre/year constraints remove other items (filter) or rank matches higher (boost)",
    )
    ask.add_argument(
        "--explainer",
        type=Path,
        default=None,
        help="a trained explainer (`recllm train-explainer`) for the run; without one, "
        "explanations are a minimal sentence of facts",
    )
    ask.add_argument("--json", action="store_true", help="print the typed answer as JSON")
    ask.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets")
    ask.set_defaults(func=cmd_ask)

    train_ex = commands.add_parser(
        "train-explainer", help="train the explanation generator for a trained recommender run"
    )
    train_ex.add_argument("run_dir", type=Path, help="the output_dir of `recllm train`")
    train_ex.add_argument("overrides", nargs="*", help="key=value, e.g. epochs=4 output_dir=X")
    train_ex.add_argument("--config", type=Path, default=None, help="optional YAML config")
    train_ex.add_argument("--data-dir", type=Path, default=None)
    train_ex.set_defaults(func=cmd_train_explainer, overrides=[])

    explain = commands.add_parser("explain", help="why this item for this user, in one sentence")
    explain.add_argument(
        "explainer",
        type=Path,
        help="folder written by `recllm train-explainer`, or a bundle",
    )
    explain.add_argument("--user", required=True, help="raw user id")
    explain.add_argument("--item", required=True, help="raw item id")
    explain.add_argument("--method", choices=["greedy", "beam", "sample"], default="greedy")
    explain.add_argument(
        "--no-verify",
        action="store_true",
        help="print the first sentence written, even if the checker cannot verify all of it",
    )
    explain.add_argument("--data-dir", type=Path, default=None)
    explain.set_defaults(func=cmd_explain)
