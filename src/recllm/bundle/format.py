"""The bundle's on-disk contract: a folder with ``manifest.json`` and the files it lists.

The manifest names the format and its version, what made the bundle (package version,
source commit, date), what it holds (the recommender's kind, catalogue size, router and
explainer), and the SHA-256 of every other file. Reading a bundle checks all of it before
anything is loaded, so a damaged or foreign folder is refused with one line instead of
failing later inside a model loader. Nothing in a bundle is pickled: tensors are
safetensors, tables Parquet, everything else JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from recllm.errors import RecLLMError

FORMAT = "recllm-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# Files inside a bundle, relative to its root.
CATALOGUE = "catalogue.parquet"
ENCODINGS = "encodings.safetensors"
HISTORIES = "histories.parquet"
RECOMMENDER = "recommender"  # adapter config + weights, model.json
BACKBONE = "backbone"  # the recommender's pretrained language model folder (a teacher's)
ENCODER = "encoder"  # the text encoder folder, when it is not the backbone (a student's)
ROUTER = "router"
EXPLAINER = "explainer"


class BundleError(RecLLMError):
    """A folder that is not a usable bundle (missing, damaged, foreign or too new)."""


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def bundle_files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the manifest, as sorted POSIX relative paths."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    )


def write_manifest(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Write ``folder/manifest.json``: format, version, ``info`` and every file's SHA-256."""
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **info,
        "files": {name: sha256_of(folder / name) for name in bundle_files(folder)},
    }
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
    os.replace(tmp, folder / MANIFEST)
    return manifest


def is_bundle(path: Path) -> bool:
    """Whether ``path`` looks like a bundle (a folder with a manifest); not verified."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder: Path, verify: bool = True) -> dict[str, Any]:
    """The manifest of the bundle in ``folder``; with ``verify``, every listed file is
    checked against its SHA-256. Raises :class:`BundleError` naming the first problem."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder} is not a folder: pass the bundle that `recllm export` wrote")
    if not path.is_file():
        raise BundleError(
            f"{folder} is not a RecLLM bundle (no {MANIFEST}); make one with `recllm export`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}): the bundle is damaged") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{folder} is not a RecLLM bundle ({MANIFEST} has no format {FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise BundleError(
            f"{folder} has bundle format version {version!r}; this recllm reads versions 1 to "
            f"{FORMAT_VERSION}: upgrade recllm or export the bundle again"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{path} lists no files: the bundle is damaged")
    if verify:
        for name, digest in files.items():
            target = folder / name
            if not target.is_file():
                raise BundleError(f"bundle {folder} is damaged: {name} is missing")
            if sha256_of(target) != digest:
                raise BundleError(
                    f"bundle {folder} is damaged: {name} does not match its checksum in {MANIFEST}"
                )
    return manifest
