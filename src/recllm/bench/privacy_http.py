"""``recllm bench privacy BUNDLE --checkpoint RUN``: the attacks over HTTP against the
service in front of a bundle, started on loopback once per service configuration.

Configurations: ``open`` (as started by default), ``hide-scores`` (ranks only),
``protect-users`` (per-user requests
need the API key, which the attacker lacks) and ``rate-limit`` (``--rate-limit`` requests
a minute per client). Each attack sends at most ``--budget`` requests per configuration,
one at a time; refused requests (401/403/429) leave the attacker guessing those pairs.
The threshold and shadow attacks ask with a supplied history, which any client may; the
exclusion attack names known users. The service's ranking is the model's: none of these
configurations changes what a key holder is recommended, so no accuracy is measured here
(the in-process run gives it for the same model).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from recllm.bench.privacy import SERVED_MAX_EXCLUDE, SERVED_MAX_K, figures, probe, protocol
from recllm.errors import RecLLMError
from recllm.privacy import attacks
from recllm.privacy.pairs import Pairs

KEY = "privacy-bench-key"


def _subset(pairs: Pairs, n: int, seed: int) -> Pairs:
    """At most ``n`` pairs, half members and half not (a budget of n requests)."""
    rng = np.random.default_rng([seed, 7])
    per_side = max(1, n // 2)
    rows = rng.permutation(  # mixed order: a rate limit cuts both sides alike
        np.r_[
            rng.permutation(np.flatnonzero(pairs.member))[:per_side],
            rng.permutation(np.flatnonzero(~pairs.member))[:per_side],
        ]
    )
    return Pairs(
        pairs.users[rows], pairs.items[rows], [pairs.prefixes[j] for j in rows], pairs.member[rows]
    )


def run_http(bundle: Path, args: argparse.Namespace) -> dict[str, Any]:
    from recllm.bundle.format import read_manifest
    from recllm.data.identity import catalogue_identity
    from recllm.privacy.http import HttpClient, HttpTarget
    from recllm.recipes.inference import load_run
    from recllm.serve.process import ServerProcess

    if args.checkpoint is None:
        raise RecLLMError(
            "bench privacy on a bundle needs --checkpoint RUN: the run it was exported from "
            "(its split says who is a member)"
        )
    run = load_run(args.checkpoint, args.data_dir, progress=False)
    manifest = read_manifest(bundle)
    if manifest.get("catalogue_identity") != catalogue_identity(run.dataset):
        raise RecLLMError(f"{bundle} was not exported from {args.checkpoint} (catalogues differ)")
    setup = probe(run.split, args, int(getattr(run.model, "max_len", 50)))
    item_ids = run.dataset.items["item_id"].astype(str).tolist()
    user_ids = run.dataset.user_ids.astype(str)
    pairs = _subset(setup.pairs, setup.budget, setup.seed)
    excluded = setup.exclusion
    configurations = {
        "open": (["--open-users"], {}),
        "hide-scores": (["--hide-scores", "--open-users"], {}),
        "protect-users": (["--protect-users"], {"RECLLM_API_KEY": KEY}),
        "rate-limit": (["--rate-limit", str(args.rate_limit), "--open-users"], {}),
    }
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (options, env) in configurations.items():
            print(f"service {name}: threshold, shadow, exclusion over HTTP")
            store = Path(tmp) / f"{name}.sqlite"
            with ServerProcess(bundle, store, *options, env=env) as server:

                def target() -> HttpTarget:
                    return HttpTarget(HttpClient(server.url, setup.budget), item_ids)

                threshold_target = target()
                threshold = attacks.threshold(threshold_target, pairs, setup.k, setup.seed)
                shadow_target = target()
                shadow = attacks.shadow(
                    shadow_target,
                    pairs,
                    setup.aux_queries[: setup.budget],
                    setup.k,
                    setup.shadow,
                    threshold.values["threshold-rank"],
                    setup.seed,
                )
                lister = target()
                pages = -(-len(item_ids) // SERVED_MAX_K) + 1
                exclusion = attacks.exclusion(
                    lister.list_user,
                    [str(user_ids[u]) for u in excluded.users],
                    [item_ids[i] for i in excluded.items],
                    SERVED_MAX_K,
                    pages,
                    setup.seed,
                    SERVED_MAX_EXCLUDE,
                )
                rows[name] = {
                    "options": options,
                    "threshold": figures(threshold, pairs),
                    "shadow": figures(shadow, pairs),
                    "exclusion": figures(exclusion, excluded),
                    "statuses": {
                        str(code): count
                        for code, count in sum(
                            (t.client.statuses for t in (threshold_target, shadow_target, lister)),
                            Counter(),
                        ).items()
                    },
                }
                for t in (threshold_target, shadow_target, lister):
                    t.client.close()
    return {
        "dataset": run.dataset.name,
        "label": args.label or f"{run.dataset.name}-http",
        "mode": "http",
        "bundle": str(bundle),
        "run": str(args.checkpoint),
        "protocol": {**protocol(run.split, setup), "http_pairs_per_side": int(pairs.member.sum())},
        "service": rows,
    }
