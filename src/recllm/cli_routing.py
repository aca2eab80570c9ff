"""Command-line verbs of the task router: ``train-router`` and ``route``."""

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
