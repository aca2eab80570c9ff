"""SYNTHETIC MovieLens-20M-shaped data, for scale benchmarks only.

:func:`write_synthetic` writes ``ratings.csv`` / ``movies.csv`` in the native ML-20M
CSV layout (so the real ML-20M loader parses them) plus a ``README.txt`` that says the
data is synthetic. Numbers measured on it say how fast and how big the pipeline is at
ML-20M scale; they say nothing about recommendation quality on MovieLens.

Shape of the data (everything vectorised NumPy, deterministic given ``seed``):

* sequence lengths: ``min_user_length`` plus a log-normal excess (heavy tail, like
  ML-20M's 20 / 68 / 144 / 9,254 min / median / mean / max), summing exactly to
  ``n_interactions``;
* item popularity: Zipf-Mandelbrot, ``(rank + offset) ** -exponent``;
* each item has a primary genre (plus up to two secondary ones in ``movies.csv``),
  genres weighted like ML-20M's; each user has a few favourite genres;
* sequential structure: a user's sequence is made of genre runs (geometric length,
  mean ``mean_genre_run``); a run's genre is one of the user's favourites with
  probability ``favourite_genre_share``, else any genre; items inside a run are drawn
  by popularity within the genre;
* timestamps strictly increase along each user's sequence (bursty gaps, activity spans
  from hours to years, between ``first_timestamp`` and ``last_timestamp``);
* ratings 0.5-5 in half stars (some users use whole stars only) from user bias, item
  quality, a favourite-genre bonus and noise.

**No (user, item) pair occurs twice**: repeats drawn by chance are redrawn (by
popularity in the genre, then in the catalogue, finally uniformly), so preprocessing's
de-duplication removes nothing, as on the real ML-20M. That is why a user's length is
capped at half the catalogue (see :class:`SynthConfig`).

Deviations from ML-20M worth knowing: popularity is a plain power law, so its tail is
thinner at the bottom (a few hundred movies under 5 ratings instead of ~8,400), and the
5-core keeps nearly the whole catalogue (ML-20M's keeps ~18,300 movies): evaluation then
ranks ~26.7k items, the pessimistic case for speed and memory.

Like ML-20M's ``ratings.csv``, rows are ordered by user, then movie id (not by time),
so chronological sorting does the same work as on the real file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from recllm.errors import ConfigError
from recllm.progress import progress_bar

# Genres and ML-20M's count of movies listing each (the extras after IMAX are not in
# ML-20M; they only let n_genres exceed 19). Primary genres are drawn with these weights.
GENRE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Drama", 13344),
    ("Comedy", 8374),
    ("Thriller", 4178),
    ("Romance", 4127),
    ("Action", 3520),
    ("Crime", 2939),
    ("Horror", 2611),
    ("Documentary", 2471),
    ("Adventure", 2329),
    ("Sci-Fi", 1743),
    ("Mystery", 1514),
    ("Fantasy", 1412),
    ("War", 1194),
    ("Children", 1139),
    ("Musical", 1036),
    ("Animation", 1027),
    ("Western", 676),
    ("Film-Noir", 330),
    ("IMAX", 196),
    ("Biography", 150),
    ("Sport", 120),
    ("History", 100),
    ("Music", 90),
    ("Family", 80),
)
GENRES = tuple(name for name, _ in GENRE_WEIGHTS)
README_NAME = "README.txt"
_CONFIG_LINE = "config: "
_RATING_TEXT = [f"{0.5 * (i + 1):.1f}" for i in range(10)]  # "0.5" .. "5.0", as ML-20M
_MAX_DEDUP_ROUNDS = 200
_GENRE_ROUNDS = 4  # duplicate-redraw rounds in the same genre, then in the catalogue
_POPULAR_ROUNDS = 60  # ... by popularity up to this round, uniformly after it

# Shape constants that need no knob: timestamps and ratings only have to look plausible.
_SESSION_BREAK_PROB = 0.02  # share of gaps that end a rating session
_BREAK_GAP_RATIO = 2000.0  # mean gap between sessions / mean gap inside a session
_MEDIAN_ACTIVE_SECONDS = 30 * 86_400  # median time between a user's first and last rating
_ACTIVE_SIGMA = 2.5  # log-normal sigma of that span (hours to years)
_RATING_CENTER = 3.0  # with the biases below, a mean rating near ML-20M's 3.53
_POPULAR_BONUS = 0.15  # popular movies are rated a little higher


@dataclass
class SynthConfig:
    """Size and shape of a SYNTHETIC MovieLens-20M-shaped dataset.

    Attributes:
        n_users: users (ML-20M: 138,493).
        n_items: movies in the catalogue (ML-20M: 26,744).
        n_interactions: rating rows, exactly (ML-20M: 20,000,263).
        seed: random seed; the same config writes byte-identical files.
        n_genres: genres used, the first ``n_genres`` of :data:`GENRES`.
        min_user_length: ratings of the lightest user (ML-20M: 20).
        max_user_length: ratings of the heaviest user (ML-20M: 9,254); the cap used is
            ``min(max_user_length, n_items // 2)``, so that redrawing duplicates ends.
        user_length_sigma: log-normal sigma of the lengths above the minimum; 1.4
            gives ML-20M's median / mean ratio.
        popularity_exponent: Zipf exponent of item popularity.
        popularity_offset: Zipf-Mandelbrot offset as a share of ``n_items``: flattens
            the head so the top movie has a share like ML-20M's (~0.3 %).
        n_favourite_genres: favourite genres per user.
        favourite_genre_share: probability that a genre run is in a favourite genre.
        mean_genre_run: mean length of a run of consecutive items of one genre (>= 1;
            1 means the genre is drawn afresh for every item).
        half_star_share: share of users who use half stars (the others rate 1-5).
        first_timestamp: earliest timestamp (ML-20M: 789,652,009, 1995-01-09).
        last_timestamp: latest timestamp (ML-20M: 1,427,784,002, 2015-03-31).
    """

    n_users: int = 138_493
    n_items: int = 26_744
    n_interactions: int = 20_000_263
    seed: int = 0
    n_genres: int = 20
    min_user_length: int = 20
    max_user_length: int = 9_254
    user_length_sigma: float = 1.4
    popularity_exponent: float = 3.0
    popularity_offset: float = 0.02
    n_favourite_genres: int = 3
    favourite_genre_share: float = 0.8
    mean_genre_run: float = 4.0
    half_star_share: float = 0.6
    first_timestamp: int = 789_652_009
    last_timestamp: int = 1_427_784_002

    def __post_init__(self) -> None:
        p: list[str] = []
        for name in ("n_users", "n_items", "n_interactions", "min_user_length"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            p.append(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.n_genres <= len(GENRES):
            p.append(f"n_genres must be in 1..{len(GENRES)}, got {self.n_genres}")
        if self.n_items < max(self.n_genres, 2 * self.min_user_length):
            p.append(
                f"n_items must be >= n_genres and >= 2 * min_user_length (users take at most "
                f"half the catalogue), got n_items={self.n_items}, n_genres={self.n_genres}, "
                f"min_user_length={self.min_user_length}"
            )
        if self.max_user_length < self.min_user_length:
            p.append(
                f"max_user_length must be >= min_user_length, got {self.max_user_length} < "
                f"{self.min_user_length}"
            )
        low, high = self.n_users * self.min_user_length, self.n_users * self.max_length
        if not p and not low <= self.n_interactions <= high:
            p.append(
                f"n_interactions must lie in n_users * [min_user_length, max length] = "
                f"[{low}, {high}] (max length = min(max_user_length, n_items // 2) = "
                f"{self.max_length}), got {self.n_interactions}; raise n_users or n_items, or change the lengths"
            )
        for name in ("user_length_sigma", "popularity_exponent", "popularity_offset"):
            if getattr(self, name) < 0:
                p.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.n_favourite_genres <= self.n_genres:
            p.append(
                f"n_favourite_genres must be in 1..n_genres ({self.n_genres}), "
                f"got {self.n_favourite_genres}"
            )
        for name in ("favourite_genre_share", "half_star_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                p.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mean_genre_run < 1.0:
            p.append(f"mean_genre_run must be >= 1, got {self.mean_genre_run}")
        if self.last_timestamp - self.first_timestamp < 2 * self.max_user_length:
            p.append(
                f"last_timestamp must be at least 2 * max_user_length seconds after "
                f"first_timestamp, got {self.first_timestamp}..{self.last_timestamp}"
            )
        ConfigError.collect("synthetic data", p)

    @property
    def max_length(self) -> int:
        """The length cap actually used: ``min(max_user_length, n_items // 2)``."""
        return min(self.max_user_length, self.n_items // 2)


@dataclass
class SyntheticData:
    """Generated interactions in file order (by user, then item) and the catalogue.

    ``user`` and ``item`` are 0-based codes; the files hold ``code + 1`` as ids.
    """

    user: np.ndarray  # (N,) int32
    item: np.ndarray  # (N,) int32
    rating: np.ndarray  # (N,) int8, half stars: rating = 0.5 * (code + 1)
    timestamp: np.ndarray  # (N,) int64, strictly increasing along each user's sequence
    item_genres: list[str]  # (n_items,) "Primary|Secondary", primary first
    item_years: np.ndarray  # (n_items,) int64


def generate(config: SynthConfig, progress: bool = False) -> SyntheticData:
    """Generate the interactions and catalogue described by ``config`` (no files)."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(7)]
    steps = progress_bar(total=6, desc="synth", enabled=progress, unit="step")

    steps.set_postfix_str("lengths")
    lengths = _user_lengths(config, streams[0])
    starts = np.zeros(config.n_users, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    user = np.repeat(np.arange(config.n_users, dtype=np.int32), lengths)  # (N,)
    steps.update()

    steps.set_postfix_str("catalogue")
    weights = np.array([w for _, w in GENRE_WEIGHTS[: config.n_genres]], dtype=np.float64)
    weights /= weights.sum()
    catalogue = _Catalogue.build(config, weights, streams[1])
    steps.update()

    steps.set_postfix_str("genre runs")
    # Users choose genres by their popularity mass, so that drawing by popularity inside
    # the genre keeps every item's overall share close to its Zipf popularity.
    demand = catalogue.mass
    favourites = _favourite_genres(config, demand, streams[2])  # (n_users, k) int8
    genre = _genre_runs(config, demand, favourites, user, starts, streams[2])  # (N,) int8
    steps.update()

    steps.set_postfix_str("items")
    rng = streams[3]
    item = catalogue.by_popularity(genre, rng.random(len(genre)))
    _redraw_duplicates(config, catalogue, user, item, genre, streams[4])
    del genre
    steps.update()

    steps.set_postfix_str("timestamps and ratings")
    timestamp = _timestamps(config, user, lengths, starts, streams[5])
    rating = _ratings(config, catalogue, favourites, user, item, streams[6])
    steps.update()

    steps.set_postfix_str("file order")
    # ML-20M's ratings.csv is ordered by user, then movie id; codes are user-major already.
    order = np.argsort(user.astype(np.int64) * config.n_items + item, kind="stable")
    data = SyntheticData(
        user=user,
        item=item[order],
        rating=rating[order],
        timestamp=timestamp[order],
        item_genres=catalogue.genre_text,
        item_years=catalogue.years,
    )
    steps.update()
    steps.close()
    return data


def write_synthetic(config: SynthConfig, out: Path, *, progress: bool = True) -> Path:
    """Write a SYNTHETIC ML-20M-shaped dataset into the folder ``out`` and return it.

    Files: ``ratings.csv`` (``userId,movieId,rating,timestamp``), ``movies.csv``
    (``movieId,title,genres``, titles like ``Synthetic Movie 123 (1994)``) and
    ``README.txt``. Each is written under a temporary name and renamed, README last, so
    a folder with a README holds a complete dataset. Other files in ``out`` are left.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = generate(config, progress=progress)
    ids = np.arange(1, config.n_items + 1, dtype=np.int32)
    ratings = pa.table(
        {
            "userId": pa.array(data.user + 1),
            "movieId": pa.array(ids[data.item]),
            "rating": pa.DictionaryArray.from_arrays(
                pa.array(data.rating, pa.int8()), pa.array(_RATING_TEXT)
            ),
            "timestamp": pa.array(data.timestamp),
        }
    )
    _write_csv(out / "ratings.csv", ratings)
    titles = [f"Synthetic Movie {i} ({y})" for i, y in zip(ids, data.item_years, strict=True)]
    movies = pa.table({"movieId": pa.array(ids), "title": titles, "genres": data.item_genres})
    _write_csv(out / "movies.csv", movies)
    _atomic_write_text(out / README_NAME, readme_text(config))
    return out


def readme_text(config: SynthConfig) -> str:
    """The README of a synthetic dataset; its last line holds the config as JSON."""
    return (
        "!!! SYNTHETIC DATA - NOT MOVIELENS !!!\n"
        "\n"
        "This folder is SYNTHETIC data generated by recllm.data.synth (`recllm data synth`)\n"
        "in the MovieLens-20M CSV layout, for SCALE BENCHMARKS ONLY (speed, memory).\n"
        "No real user rated anything here. Do not report recommendation quality measured\n"
        "on it, and never present it as MovieLens.\n"
        "\n"
        f"users: {config.n_users}, movies: {config.n_items}, ratings: {config.n_interactions}\n"
        f"{_CONFIG_LINE}{json.dumps(asdict(config), sort_keys=True)}\n"
    )


def read_synthetic_config(folder: Path) -> SynthConfig | None:
    """The config a synthetic dataset in ``folder`` was written with, if it has one."""
    readme = Path(folder) / README_NAME
    if not readme.is_file() or not (Path(folder) / "ratings.csv").is_file():
        return None
    for line in readme.read_text().splitlines():
        if line.startswith(_CONFIG_LINE):
            try:
                values = json.loads(line[len(_CONFIG_LINE) :])
                known = {f.name for f in fields(SynthConfig)}
                return SynthConfig(**{k: v for k, v in values.items() if k in known})
            except (json.JSONDecodeError, TypeError, ConfigError):
                return None
    return None


def _user_lengths(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(n_users,) int64 lengths in [min, cap] summing exactly to ``n_interactions``.

    The excess over the minimum is a log-normal draw scaled by the factor ``s`` that
    makes ``sum(min(room, s * draw))`` hit the total (found by bisection); rounding
    leftovers go to the users with the largest fractional parts.
    """
    n, low = config.n_users, config.min_user_length
    room = config.max_length - low
    total = config.n_interactions - n * low
    draw = rng.lognormal(0.0, config.user_length_sigma, n)
    lo_s, hi_s = 0.0, room / draw.min() if room else 0.0
    for _ in range(200):
        mid = 0.5 * (lo_s + hi_s)
        if np.minimum(room, mid * draw).sum() <= total:
            lo_s = mid
        else:
            hi_s = mid
    extra = np.minimum(room, lo_s * draw)
    base = np.floor(extra).astype(np.int64)
    missing = total - int(base.sum())
    while missing > 0:
        open_ = np.flatnonzero(base < room)
        take = open_[np.argsort(base[open_] - extra[open_], kind="stable")[:missing]]
        base[take] += 1
        missing -= len(take)
    return low + base


@dataclass
class _Catalogue:
    """Items grouped by primary genre, with within-genre popularity CDFs."""

    genre: np.ndarray  # (n_items,) int8 primary genre
    popularity: np.ndarray  # (n_items,) float64, sums to 1
    order: np.ndarray  # (n_items,) item codes sorted by genre
    begin: np.ndarray  # (n_genres,) start of each genre's block in ``order``
    size: np.ndarray  # (n_genres,) block sizes
    cdf: np.ndarray  # (n_items,) genre + within-genre cumulative popularity, in (g, g+1]
    mass: np.ndarray  # (n_genres,) popularity mass of each genre, sums to 1
    genre_text: list[str]
    years: np.ndarray

    @classmethod
    def build(
        cls, config: SynthConfig, weights: np.ndarray, rng: np.random.Generator
    ) -> _Catalogue:
        n, g = config.n_items, config.n_genres
        # Every genre gets at least one item; the rest by genre weight; then shuffled.
        genre = np.concatenate([np.arange(g), rng.choice(g, size=n - g, p=weights)])
        genre = rng.permutation(genre).astype(np.int8)
        rank = rng.permutation(n).astype(np.float64)
        offset = 1.0 + config.popularity_offset * n
        popularity = (rank + offset) ** -config.popularity_exponent
        popularity /= popularity.sum()
        order = np.argsort(genre, kind="stable")
        size = np.bincount(genre, minlength=g)
        begin = np.concatenate([[0], np.cumsum(size)[:-1]])
        sorted_genre = genre[order].astype(np.float64)
        cum = np.cumsum(popularity[order])
        before = np.concatenate([[0.0], cum])[begin]  # mass of all earlier genres
        mass = np.add.reduceat(popularity[order], begin)
        cdf = sorted_genre + (cum - before[genre[order]]) / mass[genre[order]]
        cdf[begin + size - 1] = np.arange(g) + 1.0  # exact block ends despite rounding

        # Up to two secondary genres for movies.csv (duplicates of the primary dropped).
        extra = rng.choice(g, size=(n, 2), p=weights)
        n_extra = rng.choice(3, size=n, p=[0.35, 0.4, 0.25])
        names = np.array(GENRES[:g], dtype=object)
        genre_text = []
        for i in range(n):
            chosen = [int(genre[i])]
            for j in range(n_extra[i]):
                if int(extra[i, j]) not in chosen:
                    chosen.append(int(extra[i, j]))
            genre_text.append("|".join(names[chosen]))
        # Release years skew recent, like the catalogue of a 2015 rating site.
        years = np.clip(2015 - np.floor(rng.exponential(18.0, n)), 1902, 2015).astype(np.int64)
        return cls(genre, popularity, order, begin, size, cdf, mass, genre_text, years)

    def by_popularity(self, genre: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Item codes drawn by popularity within ``genre`` from uniforms ``u`` in [0, 1)."""
        pos = np.searchsorted(self.cdf, genre + u, side="right")
        # g + u can round up to g + 1 when u is within 2**-53 of 1.
        pos = np.minimum(pos, self.begin[genre] + self.size[genre] - 1)
        return self.order[pos].astype(np.int32)

    def by_global_popularity(self, u: np.ndarray) -> np.ndarray:
        """Item codes drawn by popularity from the whole catalogue."""
        cdf = np.cumsum(self.popularity)
        pos = np.searchsorted(cdf, u * cdf[-1], side="right")
        return np.minimum(pos, len(cdf) - 1).astype(np.int32)


def _favourite_genres(
    config: SynthConfig, weights: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(n_users, n_favourite_genres) int8: genres drawn by weight without replacement."""
    # Gumbel top-k: the k largest log-weight + Gumbel noise are a weighted draw without
    # replacement, for all users at once.
    keys = np.log(weights) + rng.gumbel(size=(config.n_users, config.n_genres))
    return np.argsort(-keys, axis=1)[:, : config.n_favourite_genres].astype(np.int8)


def _genre_runs(
    config: SynthConfig,
    weights: np.ndarray,
    favourites: np.ndarray,
    user: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N,) int8 genre of every position: geometric runs, each of one genre."""
    new_run = rng.random(len(user)) < 1.0 / config.mean_genre_run
    new_run[starts] = True  # every user's sequence opens a run
    run_start = np.flatnonzero(new_run)
    del new_run
    run_user = user[run_start]
    n_runs = len(run_start)
    favourite = favourites[run_user, rng.integers(0, config.n_favourite_genres, n_runs)]
    anything = np.searchsorted(np.cumsum(weights), rng.random(n_runs), side="right")
    anything = np.minimum(anything, config.n_genres - 1)
    pick_favourite = rng.random(n_runs) < config.favourite_genre_share
    run_genre = np.where(pick_favourite, favourite, anything).astype(np.int8)
    run_length = np.diff(np.append(run_start, len(user)))
    return np.repeat(run_genre, run_length)


def _redraw_duplicates(
    config: SynthConfig,
    catalogue: _Catalogue,
    user: np.ndarray,
    item: np.ndarray,
    genre: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Redraw, in place, every (user, item) that repeats an earlier one of that user.

    The first rounds redraw by popularity in the same genre (keeping the runs), then by
    popularity in the whole catalogue (which keeps the long tail thin), and the last ones
    uniformly: as no user holds more than half the catalogue, a uniform draw succeeds
    with probability >= 1/2, so the loop ends. At ML-20M size ~40 % of the first draws
    repeat (heavy users) and ~70 rounds are needed. Each round re-checks only the users
    that had duplicates in the round before.
    """
    rows = np.arange(len(user))
    for round_ in range(_MAX_DEDUP_ROUNDS):
        keys = user[rows].astype(np.int64) * config.n_items + item[rows]
        order = np.argsort(keys, kind="stable")  # stable: the earliest occurrence stays
        sorted_keys = keys[order]
        repeated = order[1:][sorted_keys[1:] == sorted_keys[:-1]]
        dup = rows[repeated]
        del keys, order, sorted_keys
        if len(dup) == 0:
            return
        u = rng.random(len(dup))
        if round_ < _GENRE_ROUNDS:
            item[dup] = catalogue.by_popularity(genre[dup], u)
        elif round_ < _POPULAR_ROUNDS:
            item[dup] = catalogue.by_global_popularity(u)
        else:
            item[dup] = (u * config.n_items).astype(np.int32)
        touched = np.zeros(config.n_users, dtype=bool)
        touched[user[dup]] = True
        rows = np.flatnonzero(touched[user])
    raise AssertionError(f"duplicates left after {_MAX_DEDUP_ROUNDS} rounds")


def _timestamps(
    config: SynthConfig,
    user: np.ndarray,
    lengths: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N,) int64 seconds, strictly increasing along each user's sequence.

    Gaps are a mixture of short in-session and rare long between-session waits; their
    running sum, normalised per user, places each rating in the user's activity span.
    """
    n = int(lengths.sum())
    ends = starts + lengths - 1
    gaps = rng.exponential(1.0, n)
    breaks = rng.random(n) < _SESSION_BREAK_PROB
    gaps[breaks] *= _BREAK_GAP_RATIO
    del breaks
    gaps[starts] = 0.0
    clock = np.cumsum(gaps)
    del gaps
    first, last = clock[starts], clock[ends]
    width = np.maximum(last - first, 1e-12)
    clock -= first[user]
    clock /= width[user]  # (N,) position in the user's span, 0 .. 1

    period = config.last_timestamp - config.first_timestamp
    span = np.exp(
        np.log(_MEDIAN_ACTIVE_SECONDS) + _ACTIVE_SIGMA * rng.standard_normal(len(lengths))
    )
    span = np.clip(span, 2 * lengths, period).astype(np.int64)
    begin = config.first_timestamp + (rng.random(len(lengths)) * (period - span)).astype(np.int64)
    position = np.arange(n, dtype=np.int64) - starts[user]
    # floor(frac * (span - L)) is non-decreasing and adding the position makes it strict;
    # the last rating lands at begin + span - 1 at the latest.
    slack = (span - lengths)[user].astype(np.float64)
    return begin[user] + np.floor(clock * slack).astype(np.int64) + position


def _ratings(
    config: SynthConfig,
    catalogue: _Catalogue,
    favourites: np.ndarray,
    user: np.ndarray,
    item: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N,) int8 half-star codes (rating = 0.5 * (code + 1)); ML-20M mean is ~3.5."""
    log_pop = np.log(catalogue.popularity)
    quality = 0.45 * rng.standard_normal(config.n_items) + _POPULAR_BONUS * (
        (log_pop - log_pop.mean()) / max(log_pop.std(), 1e-12)
    )
    bias = 0.5 * rng.standard_normal(config.n_users)
    half_stars = rng.random(config.n_users) < config.half_star_share
    score = (_RATING_CENTER + bias[user] + quality[item]).astype(np.float32)
    item_genre = catalogue.genre[item]
    for j in range(config.n_favourite_genres):
        score += np.float32(0.25) * (favourites[user, j] == item_genre)
    del item_genre
    score += rng.standard_normal(len(user), dtype=np.float32) * np.float32(0.85)
    halves = np.where(
        half_stars[user], np.clip(np.rint(score * 2), 1, 10), 2 * np.clip(np.rint(score), 1, 5)
    )
    return (halves - 1).astype(np.int8)


def _write_csv(path: Path, table: pa.Table) -> None:
    """Write ``table`` as CSV with a plain header and no quotes, like GroupLens files."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write((",".join(table.column_names) + "\n").encode())
            options = pacsv.WriteOptions(
                include_header=False, quoting_style="none", batch_size=1 << 16
            )
            pacsv.write_csv(table, handle, options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
