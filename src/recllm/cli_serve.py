"""CLI verbs of serving: ``export`` a bundle, ``serve`` it, and ``recommend`` / ``explain``
/ ``ask`` answered from a bundle through the Python API (the service's code path)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from recllm.errors import RecLLMError

if TYPE_CHECKING:
    from recllm.serve.api import Recommender


def cmd_export(args: argparse.Namespace) -> int:
    from recllm.recipes.export import export

    manifest = export(
        args.run_dir,
        args.out,
        student=args.student,
        router=args.router,
        explainer=args.explainer,
        data_dir=args.data_dir,
        histories=not args.no_histories,
        overwrite=args.overwrite,
        onnx=args.onnx,
    )
    models = manifest["models"]
    print(
        f"wrote {args.out}: {manifest['dataset']}, {manifest['n_items']} items, "
        f"{models['recommender']['kind']} recommender"
        + (", router" if "router" in models else "")
        + (", explainer" if "explainer" in models else "")
    )
    print(f"serve it: recllm serve {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from recllm.serve.app import KEY_ENV, ServiceSettings
    from recllm.serve.server import serve

    key = os.environ.get(KEY_ENV) or None
    if args.api_key_file is not None:
        try:
            key = args.api_key_file.read_text().strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise RecLLMError(f"cannot read the API key file {args.api_key_file}: {exc}") from exc
        if key is None:
            raise RecLLMError(f"the API key file {args.api_key_file} is empty")
    for flag, given in (
        ("--require-key", args.require_key),
        ("--protect-users", args.protect_users),
    ):
        if given and key is None:
            raise RecLLMError(f"{flag} needs a key: set {KEY_ENV} or pass --api-key-file")
    protect_users = users_protected(key is not None, args.host, args.protect_users, args.open_users)
    if not 0 <= args.score_decimals <= 4:
        raise RecLLMError(f"--score-decimals must be in 0..4, got {args.score_decimals}")
    if args.rate_limit < 0:
        raise RecLLMError(f"--rate-limit must be >= 0 (0: no limit), got {args.rate_limit}")
    if args.workers < 1 or args.threads < 1:
        raise RecLLMError(
            f"--workers and --threads must be >= 1, got {args.workers} and {args.threads}"
        )
    store = args.store or Path(f"{str(args.bundle).rstrip('/')}.events.sqlite")
    settings = ServiceSettings(
        bundle=str(args.bundle),
        store=str(store),
        api_key=key,
        require_key=args.require_key,
        protect_users=protect_users,
        rate_limit=args.rate_limit,
        scores="hidden" if args.hide_scores else "shown",
        score_decimals=args.score_decimals,
        threads=args.threads,
        compute_slots=args.compute_slots,
        role=args.role,
        explain_url=args.explain_url,
        explain_timeout=args.explain_timeout,
    )
    serve(settings, args.host, args.port, args.workers, args.access_log)
    return 0


def users_protected(keyed: bool, host: str, protect: bool, open_users: bool) -> bool:
    """Whether requests naming a ``user_id`` need the API key (docs/privacy.md, Defaults).

    A known user's list leaves out what he has seen, so anyone who may ask for it reads
    his history (the exclusion attack's AUC is 1.0 on an open service). So: protected
    whenever there is a key to check; without one, open only to this machine (a loopback
    address), and a service open to the network must say so with ``--open-users``."""
    if protect and open_users:
        raise RecLLMError("--protect-users and --open-users contradict each other: give one")
    if protect or open_users:
        return protect
    if keyed:
        return True
    if not is_loopback(host):
        from recllm.serve.app import KEY_ENV

        raise RecLLMError(
            f"serving on {host} without an API key would let anyone on the network read a "
            f"known user's history from his lists (docs/privacy.md): set {KEY_ENV} or "
            "pass --api-key-file (requests naming a user then need the key), or pass "
            "--open-users to serve them open"
        )
    return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def load_recommender(bundle: Path) -> Recommender:
    """The bundle's Recommender with an in-memory store (a CLI call records nothing)."""
    from recllm.serve.api import Recommender

    return Recommender.load(bundle)


def recommend_from_bundle(args: argparse.Namespace) -> int:
    """``recllm recommend BUNDLE``: the API's answer, printed as for a run."""
    if args.user is not None and args.history:
        raise RecLLMError("give --user or --history, not both")
    history = [h.strip() for h in args.history.split(",") if h.strip()] if args.history else None
    if args.user is None and history is None:
        raise RecLLMError("give --user ID or --history ITEM,ITEM,...")
    result = load_recommender(args.checkpoint).recommend(
        user_id=args.user, history=history, k=args.k
    )
    for rank, item in enumerate(result.items, start=1):
        print(f"{rank:>3}. {item.item_id:<12} {item.score:8.3f}  {item.title}")
    return 0


def explain_from_bundle(args: argparse.Namespace) -> int:
    result = load_recommender(args.explainer).explain(args.item, user_id=args.user)
    print(result.text)
    return 0


def ask_from_bundle(args: argparse.Namespace) -> int:
    from recllm.serve.results import to_json

    answer = load_recommender(args.checkpoint).ask(args.query, user_id=args.user, k=args.k)
    if args.json:
        print(json.dumps(to_json(answer), ensure_ascii=False, indent=2))
        return 0
    print(f"intent: {answer.intent} (confidence {answer.confidence:.2f})")
    for rank, item in enumerate(answer.items, start=1):
        print(f"{rank:>3}. {item.item_id:<12} {item.score:8.3f}  {item.title}")
    for explanation in answer.explanations:
        mark = "" if explanation.verified else " [unverified]"
        print(f"why{mark}: {explanation.text}")
    for note in answer.notes:
        print(f"note: {note}")
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="write a self-contained bundle (model, catalogue, router, explainer)"
    )
    export.add_argument("run_dir", type=Path, help="a RecLLM-Adapter run (`recllm train`)")
    export.add_argument("--out", type=Path, required=True, help="the bundle folder to write")
    export.add_argument(
        "--student", type=Path, default=None, help="a `recllm distill` run of it: served instead"
    )
    export.add_argument("--router", type=Path, default=None, help="a `recllm train-router` folder")
    export.add_argument(
        "--explainer",
        type=Path,
        default=None,
        help="a `recllm train-explainer` folder for the served run",
    )
    export.add_argument(
        "--onnx",
        action="store_true",
        help="also export the recommender to ONNX and serve it through ONNX Runtime when it "
        "ranks the test users' top 10 identically and answers faster",
    )
    export.add_argument(
        "--no-histories", action="store_true", help="leave the known users' histories out"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    export.add_argument("--data-dir", type=Path, default=None, help="folder holding the datasets")
    export.set_defaults(func=cmd_export)

    serve = commands.add_parser("serve", help="the HTTP service over a bundle (FastAPI)")
    serve.add_argument("bundle", type=Path, help="a folder written by `recllm export`")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--threads", type=int, default=1, help="compute threads per worker (default 1)"
    )
    serve.add_argument(
        "--compute-slots",
        type=int,
        default=0,
        metavar="N",
        help="recommend/explain/ask requests computed at once, the rest queue in arrival order "
        "(default 0: 2, or 16 for --role rank, whose requests wait on the explain service)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log a line per request (default off: /metrics counts requests by route and status)",
    )
    serve.add_argument(
        "--store",
        default=None,
        help="where events and added items live: a SQLite file (default: "
        "BUNDLE.events.sqlite), or redis://HOST:PORT/DB shared by replicas",
    )
    serve.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help="file holding the admin API key (default: $RECLLM_API_KEY; none: admin disabled)",
    )
    serve.add_argument(
        "--require-key", action="store_true", help="require the API key on every endpoint"
    )
    serve.add_argument(
        "--role",
        choices=["all", "rank", "explain"],
        default="all",
        help="all: everything (default); rank: everything, explanations asked of --explain-url; "
        "explain: /v1/explain and what a rank service calls",
    )
    serve.add_argument(
        "--explain-url",
        default=None,
        help="rank: the explain service, e.g. http://10.0.0.5:8001 (same bundle and store; "
        "this service's API key, if it has one, is sent with each call)",
    )
    serve.add_argument(
        "--explain-timeout",
        type=float,
        default=2.0,
        help="rank: seconds to wait for the explain service before answering without reasons "
        "(default 2)",
    )
    users = serve.add_mutually_exclusive_group()
    users.add_argument(
        "--protect-users",
        action="store_true",
        help="require the API key on requests naming a user_id (recommend, explain, ask, "
        "events, the page's user lookups): without it anyone can read a known user's history "
        "from what his list leaves out (docs/privacy.md). The default whenever a key is set",
    )
    users.add_argument(
        "--open-users",
        action="store_true",
        help="answer requests naming a user_id without the key, even when a key is set (needed "
        "to serve keyless beyond loopback)",
    )
    serve.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="N",
        help="at most N requests a minute per client (by key, else address) on the /v1 "
        "routes, per worker; 0: no limit",
    )
    serve.add_argument(
        "--hide-scores",
        action="store_true",
        help="ranked lists show ranks only (score: null), the same ranking (docs/privacy.md)",
    )
    serve.add_argument(
        "--score-decimals",
        type=int,
        default=4,
        metavar="D",
        help="round shown scores to D decimals (0-4; default 4)",
    )
    serve.set_defaults(func=cmd_serve)
