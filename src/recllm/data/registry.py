"""Dataset names and on-disk layouts: resolve ``NAME|PATH`` to a loader, load via cache.

A name (``ml-100k``) is looked up under the data directory; a path is inspected and
its layout recognised from the files it holds. Either way the parsed result is cached
as Parquet (see :mod:`recllm.data.cache`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from recllm import paths
from recllm.data.cache import load_cached
from recllm.data.loaders import amazon, movielens, recbole, tabular
from recllm.data.schema import Dataset
from recllm.errors import DataFormatError, DatasetNotFoundError, RecLLMError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """One on-disk format: how to recognise it, which files it reads, how to parse it."""

    format: str
    marker: str  # glob that identifies the layout inside a folder
    inputs: tuple[str, ...]  # globs of the files the loader reads (hashed for the cache)
    load: Callable[[Path], Dataset]


LAYOUTS: tuple[Layout, ...] = (
    Layout("movielens-100k", "u.data", ("u.data", "u.item", "u.genre"), movielens.load_ml100k),
    Layout(
        "movielens-dat",
        "ratings.dat",
        ("ratings.dat", "movies.dat", "tags.dat"),
        movielens.load_ml_dat,
    ),
    Layout(
        "movielens-1m-reconstructed",
        "ratings_reconstructed.csv.gz",
        ("ratings_reconstructed.csv.gz", "movies.dat"),
        movielens.load_ml_shared_1m,
    ),
    Layout(
        "movielens-csv",
        "ratings.csv",
        ("ratings.csv", "movies.csv", "tags.csv"),
        movielens.load_ml_csv,
    ),
    Layout(
        "amazon-beauty-shared",
        "Amazon_Beauty.item",
        ("interactions.csv.gz", "Amazon_Beauty.item"),
        amazon.load_amazon_beauty,
    ),
    Layout("recbole-atomic", "*.inter", ("*.inter", "*.item"), recbole.load_recbole),
    Layout("amazon-reviews", "*.json*", ("*.json", "*.json.gz"), amazon.load_amazon),
)


@dataclass(frozen=True)
class KnownDataset:
    """A public dataset we know by name, with the folder names it may sit in."""

    name: str
    folders: tuple[str, ...]
    description: str


KNOWN: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        KnownDataset("ml-100k", ("ml-100k",), "MovieLens 100K (GroupLens)"),
        KnownDataset(
            "ml-1m", ("ml-1m",), "MovieLens 1M (original or the reconstructed shared copy)"
        ),
        KnownDataset("ml-10m", ("ml-10m", "ml-10M100K"), "MovieLens 10M (GroupLens)"),
        KnownDataset("ml-20m", ("ml-20m",), "MovieLens 20M (GroupLens)"),
        KnownDataset("ml-25m", ("ml-25m",), "MovieLens 25M (GroupLens)"),
        KnownDataset("ml-latest", ("ml-latest",), "MovieLens latest full (GroupLens)"),
        KnownDataset("ml-latest-small", ("ml-latest-small",), "MovieLens latest small (GroupLens)"),
        KnownDataset("amazon-beauty", ("amazon-beauty",), "Amazon Beauty 5-core, 2014 (implicit)"),
        KnownDataset(
            "amazon-musical-instruments",
            ("amazon-musical-instruments-5core", "amazon-musical-instruments"),
            "Amazon Musical Instruments 5-core reviews, 2014 (with review text)",
        ),
        KnownDataset(
            "synthetic-ml20m", ("synthetic-ml20m",), "SYNTHETIC MovieLens-20M-shaped data"
        ),
    )
}


def detect_layout(folder: Path) -> Layout:
    """The first layout whose marker file exists in ``folder``."""
    for layout in LAYOUTS:
        if any(folder.glob(layout.marker)):
            return layout
    present = sorted(p.name for p in folder.iterdir())[:12] if folder.is_dir() else []
    raise DatasetNotFoundError(
        f"{folder}: no known dataset layout (looked for u.data, ratings.dat, ratings.csv, "
        f"*.inter, Amazon *.json.gz, ...); the folder holds {present}"
    )


def resolve(source: str | Path, data_dir: Path | None = None) -> tuple[str, Path]:
    """``NAME|PATH`` -> (dataset name, folder or file)."""
    text = str(source)
    if text in KNOWN:
        root = paths.data_dir(data_dir)
        for folder in KNOWN[text].folders:
            if (root / folder).is_dir():
                return text, root / folder
        fetch = (
            "recllm data synth" if text.startswith("synthetic") else f"recllm data download {text}"
        )
        raise DatasetNotFoundError(
            f"dataset {text!r} is not in the data directory {root} (looked for "
            f"{', '.join(KNOWN[text].folders)}). Set --data-dir or RECLLM_DATA_DIR to the "
            f"folder that holds it, or run `{fetch}`."
        )
    path = Path(text).expanduser()
    if path.exists():
        return _name_of(path), path
    raise DatasetNotFoundError(
        f"unknown dataset {text!r}: not a known name ({', '.join(KNOWN)}) and no such path"
    )


def _name_of(path: Path) -> str:
    stem = path.name.split(".")[0]
    for known in KNOWN.values():
        if stem in known.folders:
            return known.name
    return stem


def load_dataset(
    source: str | Path,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    columns: tabular.ColumnMap | None = None,
) -> Dataset:
    """Load a dataset by name or path into the canonical form, through the Parquet cache.

    Args:
        source: a known name (see :data:`KNOWN`) or a folder/file path.
        columns: column mapping for plain CSV/Parquet files (ignored otherwise).
    """
    try:
        return _load(source, data_dir, cache_dir, use_cache, columns)
    except RecLLMError:
        raise
    except OSError as exc:  # no permission, a folder where a file should be, I/O errors
        where = exc.filename or source
        raise DataFormatError(where, f"cannot be read ({exc.strerror or exc})") from exc


def _load(
    source: str | Path,
    data_dir: Path | None,
    cache_dir: Path | None,
    use_cache: bool,
    columns: tabular.ColumnMap | None,
) -> Dataset:
    name, path = resolve(source, data_dir)
    if path.is_file():
        if path.suffix == ".inter" or _belongs_to_layout(path):
            # A file of a known layout (ratings.dat, x.inter, reviews_X_5.json.gz) is read
            # with the rest of its folder, not as a plain table.
            return load_dataset(path.parent, data_dir, cache_dir, use_cache)
        files = [path]
        format_name = "table"
        loader: Callable[[], Dataset] = partial(tabular.load_table, path, columns, None, name)
        extra = repr(columns)
    else:
        layout = detect_layout(path)
        files = sorted({f for pattern in layout.inputs for f in path.glob(pattern) if f.is_file()})
        format_name = layout.format
        loader = partial(_load_named, layout, path, name)
        extra = name
    if not use_cache:
        return loader()
    return load_cached(loader, format_name, files, paths.cache_dir(cache_dir), extra)


def _belongs_to_layout(path: Path) -> bool:
    """Whether ``path`` is an input file of its folder's layout that no table reader takes.

    CSV/TSV/Parquet files always stay plain tables (a generic ``ratings.csv`` too).
    """
    if any(s in (".csv", ".tsv", ".parquet") for s in path.suffixes):
        return False
    try:
        layout = detect_layout(path.parent)
    except DatasetNotFoundError:
        return False
    return any(path.match(pattern) for pattern in layout.inputs)


def _load_named(layout: Layout, path: Path, name: str) -> Dataset:
    dataset = layout.load(path)
    dataset.name = name
    return dataset
