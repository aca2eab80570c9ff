"""MovieLens in its native GroupLens layouts: 100K, 1M/10M (``::``), 20M/25M/latest (CSV).

Item text fields: ``title`` (year and trailing article moved, "Usual Suspects, The
(1995)" -> "The Usual Suspects"), ``genres`` (comma-separated), ``year``, and ``tags``
(the most frequent user tags, where the release has ``tags.csv``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recllm.data.io import read_delimited, require_file
from recllm.data.schema import ITEM_ID, Dataset, build_dataset
from recllm.errors import DataFormatError

log = logging.getLogger(__name__)

MOVIELENS_TEMPLATE = "Title: {title} | Genres: {genres} | Year: {year}"
RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.*), (?P<article>The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El)$"
)
_TOP_TAGS = 10


def split_title(raw: str) -> tuple[str, str]:
    """Split "Usual Suspects, The (1995)" into ("The Usual Suspects", "1995")."""
    title = raw.strip()
    year = ""
    match = _YEAR.search(title)
    if match:
        year = match.group(1)
        title = title[: match.start()].strip()
    alt = ""
    # Foreign titles carry an alternative name in parentheses: keep it after the main one.
    if title.endswith(")") and " (" in title:
        cut = title.rfind(" (")
        title, alt = title[:cut].strip(), title[cut:]
    article = _TRAILING_ARTICLE.match(title)
    if article:
        sep = "" if article.group("article").endswith("'") else " "
        title = f"{article.group('article')}{sep}{article.group('body')}"
    return title + alt, year


def _movie_table(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    split = [split_title(t) for t in titles.astype(str)]
    genre_text = (
        genres.fillna("")
        .astype(str)
        .str.replace("(no genres listed)", "", regex=False)
        .str.replace("|", ", ", regex=False)
    )
    return pd.DataFrame(
        {
            ITEM_ID: ids.astype(np.int64).astype(str).to_numpy(),
            "title": [s[0] for s in split],
            "genres": genre_text.to_numpy(),
            "year": [s[1] for s in split],
        }
    )


def _ratings_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Raw ids as integers-as-strings so that user "1" and item "1" match metadata."""
    return pd.DataFrame(
        {
            "user_id": table["user_id"].astype(np.int64),
            "item_id": table["item_id"].astype(np.int64).astype(str),
            "rating": table["rating"],
            "timestamp": table["timestamp"],
        }
    )


def load_ml100k(root: Path) -> Dataset:
    """MovieLens 100K: ``u.data`` (TSV) and ``u.item`` (``|``, Latin-1, 19 genre flags)."""
    ratings = read_delimited(root / "u.data", "\t", RATING_COLUMNS, RATING_COLUMNS)
    genre_names = _ml100k_genres(root)
    item_cols = ["movie_id", "title", "release_date", "video_release_date", "url", *genre_names]
    movies = read_delimited(
        root / "u.item", "|", item_cols, ["movie_id", *genre_names], encoding="latin-1"
    )
    flags = movies[genre_names].fillna(0).to_numpy(dtype=bool)
    names = np.array(genre_names, dtype=object)
    genres = pd.Series(["|".join(names[row]) for row in flags])
    items = _movie_table(movies["movie_id"], movies["title"], genres)
    # u.item titles of a few films lack a year; the release date has it.
    release_year = movies["release_date"].fillna("").astype(str).str[-4:]
    items["year"] = np.where(items["year"] == "", release_year, items["year"])
    items.loc[items["genres"] == "unknown", "genres"] = ""
    return build_dataset(
        "ml-100k",
        _ratings_frame(ratings),
        items,
        rating_scale=(1.0, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={"source": str(root), "format": "movielens-100k"},
    )


def _ml100k_genres(root: Path) -> list[str]:
    path = root / "u.genre"
    if not path.is_file():
        return [f"genre_{i}" for i in range(19)]
    table = read_delimited(path, "|", ["genre", "index"], ["index"], encoding="latin-1")
    table = table.dropna().sort_values("index")
    names = table["genre"].astype(str).tolist()
    if len(names) != 19:
        raise DataFormatError(path, f"expected 19 genres, found {len(names)}")
    return names


def load_ml_dat(root: Path, name: str = "ml-1m") -> Dataset:
    """MovieLens 1M and 10M: ``ratings.dat`` and ``movies.dat`` with ``::`` separators."""
    ratings = read_delimited(root / "ratings.dat", "::", RATING_COLUMNS, RATING_COLUMNS)
    return build_dataset(
        name,
        _ratings_frame(ratings),
        _dat_movies(root / "movies.dat"),
        rating_scale=(0.5 if name == "ml-10m" else 1.0, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={"source": str(root), "format": "movielens-dat"},
    )


def _dat_movies(path: Path) -> pd.DataFrame:
    require_file(path, "MovieLens movies.dat")
    # 1M is Latin-1, 10M is UTF-8: try UTF-8 first, the stricter of the two.
    try:
        path.read_bytes().decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"
    movies = read_delimited(
        path, "::", ["movie_id", "title", "genres"], ["movie_id"], encoding=encoding
    )
    return _movie_table(movies["movie_id"], movies["title"], movies["genres"])


def load_ml_shared_1m(root: Path) -> Dataset:
    """The reconstructed ML-1M copy: ``ratings_reconstructed.csv.gz`` plus ``movies.dat``.

    Users 3000 and above have no timestamps in this copy (the original ``ratings.dat``
    is not available); sequential splits drop them by default (see preprocessing).
    """
    ratings = read_delimited(
        root / "ratings_reconstructed.csv.gz",
        ",",
        ["user_id", "movie_id", "rating", "timestamp"],
        ["user_id", "movie_id", "rating", "timestamp"],
        header=True,
    ).rename(columns={"movie_id": "item_id"})
    untimed = int(ratings["timestamp"].isna().sum())
    return build_dataset(
        "ml-1m",
        _ratings_frame(ratings),
        _dat_movies(root / "movies.dat"),
        rating_scale=(1.0, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={
            "source": str(root),
            "format": "movielens-1m-reconstructed",
            "note": "ratings reconstructed; users >= 3000 have no timestamps",
            "rows_without_timestamp": untimed,
        },
    )


def load_ml_csv(root: Path, name: str = "ml-20m") -> Dataset:
    """MovieLens 20M / 25M / latest: ``ratings.csv``, ``movies.csv`` and ``tags.csv``."""
    ratings = read_delimited(
        root / "ratings.csv",
        ",",
        ["userId", "movieId", "rating", "timestamp"],
        ["userId", "movieId", "rating", "timestamp"],
        header=True,
    ).rename(columns={"userId": "user_id", "movieId": "item_id"})
    movies = read_delimited(
        root / "movies.csv", ",", ["movieId", "title", "genres"], ["movieId"], header=True
    )
    items = _movie_table(movies["movieId"], movies["title"], movies["genres"])
    tags_path = root / "tags.csv"
    if tags_path.is_file():
        items["tags"] = _top_tags(tags_path, items[ITEM_ID])
    return build_dataset(
        name,
        _ratings_frame(ratings),
        items,
        rating_scale=(0.5, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={"source": str(root), "format": "movielens-csv"},
    )


def _top_tags(path: Path, item_ids: pd.Series) -> np.ndarray:
    tags = read_delimited(path, ",", ["movieId", "tag"], ["movieId"], header=True)
    tags["tag"] = tags["tag"].astype(str).str.strip().str.lower()
    tags = tags[tags["tag"] != ""]
    counts = tags.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("movieId").head(_TOP_TAGS)
    joined = top.groupby("movieId")["tag"].agg(", ".join)
    joined.index = joined.index.astype(np.int64).astype(str)
    return joined.reindex(item_ids).fillna("").to_numpy()
