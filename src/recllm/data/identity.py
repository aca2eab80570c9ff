"""The identity of a preprocessed catalogue, recorded with a run and checked on load.

A model scores item *codes*; codes are positions in the preprocessed item table. Data in
which one item leaves the k-core and another enters keeps the item count but shifts
every code after the change, and a model loaded on it would silently answer with
neighbouring items. So a run records a hash of the ordered raw item ids and of the
preprocessing config (and of the ordered raw user ids, which user-embedding models index
the same way), and refuses data whose hash differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from recllm.data.schema import Dataset
from recllm.errors import RecLLMError

log = logging.getLogger(__name__)

IDENTITY_FILE = "catalogue.json"


def _sha256(ids: Any) -> str:
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()[:16]


def catalogue_identity(dataset: Dataset) -> dict[str, Any]:
    """Counts and hashes of a preprocessed dataset's ordered item and user ids."""
    preprocess = json.dumps(dataset.info.get("preprocess", {}), sort_keys=True)
    return {
        "dataset": dataset.name,
        "n_items": dataset.n_items,
        "items_sha256": _sha256([preprocess, *dataset.items["item_id"].astype(str)]),
        "n_users": dataset.n_users,
        "users_sha256": _sha256(dataset.user_ids),
    }


def write_identity(folder: Path, identity: dict[str, Any]) -> None:
    (Path(folder) / IDENTITY_FILE).write_text(json.dumps(identity, indent=2) + "\n")


def check_identity(folder: Path, identity: dict[str, Any], users_matter: bool = False) -> None:
    """Refuse data whose catalogue (or, when ``users_matter``, user list) is not the one
    ``folder`` recorded; a folder from before identities were recorded is only warned of."""
    path = Path(folder) / IDENTITY_FILE
    if not path.is_file():
        log.warning("%s records no catalogue identity (an older run): it cannot be checked", folder)
        return
    try:
        saved = json.loads(path.read_text())
        saved_items, saved_users = saved["items_sha256"], saved["users_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecLLMError(f"{path} is damaged ({exc})") from exc
    differs = []
    if saved_items != identity["items_sha256"]:
        differs.append(f"items ({identity['n_items']} now, {saved.get('n_items')} then)")
    if users_matter and saved_users != identity["users_sha256"]:
        differs.append(f"users ({identity['n_users']} now, {saved.get('n_users')} then)")
    if differs:
        raise RecLLMError(
            f"{folder} was trained on another catalogue: the {' and '.join(differs)} of "
            f"{identity['dataset']} differ in ids or order from the run's (the data or its "
            "preprocessing changed); point --data-dir at the data it was trained on, or retrain"
        )
