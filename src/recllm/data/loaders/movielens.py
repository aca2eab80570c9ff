"""MovieLens in its native GroupLens layouts: 100K, 1M/10M (``::``), 20M/25M/latest (CSV).

Item text fields: ``title`` (year and trailing article moved, "Usual Suspects, The
(1995)" -> "The Usual Suspects"), ``genres`` (comma-separated), ``year``, and ``tags``
(the most frequent user tags, where the release has ``tags.csv`` or ``tags.dat``).
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
# "(1995)", and for series "(2006-2010)" or "(1980– )".
_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4}\s*)?\)\s*$")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.*), (?P<article>The|A|An|Les|La|Le|L'|Il|Lo|Gli|Los|Las|Das|Der|Die|Den|Det"
    r"|Ein|Eine|El|Un|Une)$"
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
    # Foreign titles carry an alternative name in parentheses: keep it after the main one,
    # with its own trailing article moved too: "(Cité des enfants perdus, La)".
    if title.endswith(")") and " (" in title:
        cut = title.rfind(" (")
        title, alt = title[:cut].strip(), title[cut + 2 : -1].strip()
        alt = f" ({_move_article(alt)})"
    return _move_article(title) + alt, year


def _move_article(title: str) -> str:
    """ "Usual Suspects, The" -> "The Usual Suspects"; "Homme d'Eau, L'" -> "L'Homme d'Eau"."""
    article = _TRAILING_ARTICLE.match(title)
    if not article:
        return title
    sep = "" if article.group("article").endswith("'") else " "
    return f"{article.group('article')}{sep}{article.group('body')}"


def _movie_table(ids: pd.Series, titles: pd.Series, genres: pd.Series, path: Path) -> pd.DataFrame:
    split = [split_title(t) for t in titles.astype(str)]
    genre_text = (
        genres.fillna("")
        .astype(str)
        .str.replace("(no genres listed)", "", regex=False)
        .str.replace("|", ", ", regex=False)
    )
    return pd.DataFrame(
        {
            ITEM_ID: _int_ids(ids, path, "movie_id").astype(str),
            "title": [s[0] for s in split],
            "genres": genre_text.to_numpy(),
            "year": [s[1] for s in split],
        }
    )


def _int_ids(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """MovieLens ids are integers; a fractional one means a misread file, not an id."""
    numbers = values.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(numbers) | (numbers != np.round(numbers)))
    if len(bad):
        raise DataFormatError(
            path,
            f"column {column!r} must hold integer ids, found {numbers[bad[0]]:g}"
            f" (data row {bad[0] + 1})",
        )
    return numbers.astype(np.int64)


def _ratings_frame(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Raw ids as integers (``build_dataset`` matches item 1 with metadata id "1")."""
    return pd.DataFrame(
        {
            "user_id": _int_ids(table["user_id"], path, "user_id"),
            "item_id": _int_ids(table["item_id"], path, "item_id"),
            "rating": table["rating"],
            "timestamp": table["timestamp"],
        }
    )


def _read_ratings(path: Path, sep: str) -> pd.DataFrame:
    """A header-less ratings file: ``user::item::rating::timestamp`` (or tab-separated)."""
    table = read_delimited(
        path, sep, RATING_COLUMNS, RATING_COLUMNS, required=("user_id", "item_id"), quoted=False
    )
    return _ratings_frame(table, path)


def load_ml100k(root: Path) -> Dataset:
    """MovieLens 100K: ``u.data`` (TSV) and ``u.item`` (``|``, Latin-1, 19 genre flags)."""
    ratings = _read_ratings(root / "u.data", "\t")
    genre_names = _ml100k_genres(root)
    item_cols = ["movie_id", "title", "release_date", "video_release_date", "url", *genre_names]
    movies = read_delimited(
        root / "u.item",
        "|",
        item_cols,
        ["movie_id", *genre_names],
        encoding="latin-1",
        required=("movie_id",),
        quoted=False,
    )
    flags = movies[genre_names].fillna(0).to_numpy(dtype=bool)
    names = np.array(genre_names, dtype=object)
    genres = pd.Series(["|".join(names[row]) for row in flags])
    items = _movie_table(movies["movie_id"], movies["title"], genres, root / "u.item")
    # u.item titles of a few films lack a year; the release date has it.
    release_year = movies["release_date"].fillna("").astype(str).str[-4:]
    items["year"] = np.where(items["year"] == "", release_year, items["year"])
    items.loc[items["genres"] == "unknown", "genres"] = ""
    return build_dataset(
        "ml-100k",
        ratings,
        items,
        rating_scale=(1.0, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={"source": str(root), "format": "movielens-100k"},
    )


def _ml100k_genres(root: Path) -> list[str]:
    path = root / "u.genre"
    if not path.is_file():
        return [f"genre_{i}" for i in range(19)]
    table = read_delimited(
        path, "|", ["genre", "index"], ["index"], encoding="latin-1", quoted=False
    )
    table = table.dropna().sort_values("index")
    names = table["genre"].astype(str).tolist()
    if len(names) != 19:
        raise DataFormatError(path, f"expected 19 genres, found {len(names)}")
    return names


def load_ml_dat(root: Path, name: str | None = None) -> Dataset:
    """MovieLens 1M and 10M: ``ratings.dat`` and ``movies.dat`` with ``::`` separators.

    10M has half-star ratings (0.5-5) and ``tags.dat``; the rating scale is read from
    the data (any half star means 0.5-5), so it is right whatever the folder is called.
    """
    ratings = _read_ratings(root / "ratings.dat", "::")
    half_stars = bool((ratings["rating"].dropna() % 1 != 0).any())
    items = _dat_movies(root / "movies.dat")
    tags_path = root / "tags.dat"
    if tags_path.is_file():
        tags = read_delimited(
            tags_path,
            "::",
            ["user_id", "movieId", "tag", "timestamp"],
            ["movieId"],
            required=("movieId",),
            quoted=False,
        )
        items["tags"] = _top_tags(tags, items[ITEM_ID], tags_path)
    if name is None:
        name = "ml-10m" if half_stars or root.name.lower().startswith("ml-10m") else "ml-1m"
    return build_dataset(
        name,
        ratings,
        items,
        rating_scale=(0.5 if half_stars else 1.0, 5.0),
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
        path,
        "::",
        ["movie_id", "title", "genres"],
        ["movie_id"],
        encoding=encoding,
        required=("movie_id",),
        quoted=False,
    )
    return _movie_table(movies["movie_id"], movies["title"], movies["genres"], path)


def load_ml_shared_1m(root: Path) -> Dataset:
    """The reconstructed ML-1M copy: ``ratings_reconstructed.csv.gz`` plus ``movies.dat``.

    Users 3000 and above have no timestamps in this copy (the original ``ratings.dat``
    is not available); sequential splits drop them by default (see preprocessing).
    """
    path = root / "ratings_reconstructed.csv.gz"
    ratings = read_delimited(
        path,
        ",",
        ["user_id", "movie_id", "rating", "timestamp"],
        ["user_id", "movie_id", "rating", "timestamp"],
        header=True,
        required=("user_id", "movie_id"),
    ).rename(columns={"movie_id": "item_id"})
    untimed = int(ratings["timestamp"].isna().sum())
    unrated = int(ratings["rating"].isna().sum())
    return build_dataset(
        "ml-1m",
        _ratings_frame(ratings, path),
        _dat_movies(root / "movies.dat"),
        rating_scale=(1.0, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={
            "source": str(root),
            "format": "movielens-1m-reconstructed",
            "note": "ratings reconstructed; users >= 3000 have no timestamps",
            "rows_without_timestamp": untimed,
            "rows_without_rating": unrated,
        },
    )


def load_ml_csv(root: Path, name: str | None = None) -> Dataset:
    """MovieLens 20M / 25M / latest: ``ratings.csv``, ``movies.csv`` and ``tags.csv``."""
    ratings_path = root / "ratings.csv"
    ratings = read_delimited(
        ratings_path,
        ",",
        ["userId", "movieId", "rating", "timestamp"],
        ["userId", "movieId", "rating", "timestamp"],
        header=True,
        required=("userId", "movieId"),
    ).rename(columns={"userId": "user_id", "movieId": "item_id"})
    movies_path = root / "movies.csv"
    movies = read_delimited(
        movies_path,
        ",",
        ["movieId", "title", "genres"],
        ["movieId"],
        header=True,
        required=("movieId",),
    )
    items = _movie_table(movies["movieId"], movies["title"], movies["genres"], movies_path)
    tags_path = root / "tags.csv"
    if tags_path.is_file():
        tags = read_delimited(
            tags_path, ",", ["movieId", "tag"], ["movieId"], header=True, required=("movieId",)
        )
        items["tags"] = _top_tags(tags, items[ITEM_ID], tags_path)
    return build_dataset(
        name or root.name.lower(),
        _ratings_frame(ratings, ratings_path),
        items,
        rating_scale=(0.5, 5.0),
        text_template=MOVIELENS_TEMPLATE,
        info={"source": str(root), "format": "movielens-csv"},
    )


def _top_tags(tags: pd.DataFrame, item_ids: pd.Series, path: Path) -> np.ndarray:
    """The most frequent tags of each movie, joined by commas, aligned with ``item_ids``."""
    tags = tags.assign(movieId=_int_ids(tags["movieId"], path, "movieId"))
    tags["tag"] = tags["tag"].astype(str).str.strip().str.lower()
    blank = int((tags["tag"] == "").sum())
    if blank:
        log.info("%s: ignored %d empty tag(s)", path, blank)
    tags = tags[tags["tag"] != ""]
    unknown = ~tags["movieId"].astype(str).isin(item_ids)
    if unknown.any():
        log.warning(
            "%s: ignored %d tag(s) of %d movie(s) that the movies file does not list",
            path,
            int(unknown.sum()),
            tags.loc[unknown, "movieId"].nunique(),
        )
    counts = tags.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("movieId").head(_TOP_TAGS)
    joined = top.groupby("movieId")["tag"].agg(", ".join)
    joined.index = joined.index.astype(np.int64).astype(str)
    return joined.reindex(item_ids).fillna("").to_numpy()
