"""SYNTHETIC ML-20M-shaped data: determinism, the real loader, and the shape it promises."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recllm.data.preprocess import PreprocessConfig, chronological, preprocess
from recllm.data.registry import load_dataset
from recllm.data.schema import Dataset
from recllm.data.synth import (
    GENRES,
    SynthConfig,
    generate,
    read_synthetic_config,
    write_synthetic,
)
from recllm.errors import ConfigError

# 3 % dense, like a small slice of ML-20M (0.5 %). Much denser (e.g. 200 items) and each
# user holds a third of the catalogue: the no-repeat rule then washes out the structure.
TINY = SynthConfig(n_users=300, n_items=2_000, n_interactions=20_000, seed=7)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(
        TINY, tmp_path_factory.mktemp("synth") / "synthetic-ml20m", progress=False
    )


@pytest.fixture(scope="module")
def tiny(tiny_folder: Path) -> Dataset:
    return load_dataset(tiny_folder, use_cache=False)


def _primary_genres(dataset: Dataset) -> np.ndarray:
    """(n_items,) primary genre (the first one listed) of every item code."""
    return dataset.items["genres"].str.split(", ").str[0].to_numpy()


def _same_genre_rate(dataset: Dataset) -> tuple[float, float]:
    """Share of consecutive same-genre pairs in user sequences, and its chance level."""
    frame = chronological(dataset.interactions)
    genre = _primary_genres(dataset)[frame["item"].to_numpy()]
    user = frame["user"].to_numpy()
    pairs = user[1:] == user[:-1]
    rate = float((genre[1:] == genre[:-1])[pairs].mean())
    shares = pd.Series(genre).value_counts(normalize=True).to_numpy()
    return rate, float((shares**2).sum())


def test_same_seed_writes_identical_files(tmp_path: Path, tiny_folder: Path) -> None:
    again = write_synthetic(TINY, tmp_path / "again", progress=False)
    for name in ("ratings.csv", "movies.csv", "README.txt"):
        assert (again / name).read_bytes() == (tiny_folder / name).read_bytes(), name
    other = write_synthetic(replace(TINY, seed=8), tmp_path / "other", progress=False)
    assert (other / "ratings.csv").read_bytes() != (tiny_folder / "ratings.csv").read_bytes()


def test_files_have_the_ml20m_layout(tiny_folder: Path) -> None:
    ratings = (tiny_folder / "ratings.csv").read_text().splitlines()
    assert ratings[0] == "userId,movieId,rating,timestamp"
    assert len(ratings) == TINY.n_interactions + 1
    user, movie, rating, stamp = ratings[1].split(",")
    assert user == "1" and rating in {f"{0.5 * i:.1f}" for i in range(1, 11)}
    assert movie.isdigit() and stamp.isdigit()
    movies = (tiny_folder / "movies.csv").read_text().splitlines()
    assert movies[0] == "movieId,title,genres"
    assert movies[1].startswith("1,Synthetic Movie 1 (")
    # Like GroupLens' file: ordered by user, then movie id.
    frame = pd.read_csv(tiny_folder / "ratings.csv")
    assert frame.equals(frame.sort_values(["userId", "movieId"], kind="stable"))


def test_parses_with_the_ml20m_loader(tiny: Dataset) -> None:
    assert (tiny.n_users, tiny.n_items, tiny.n_interactions) == (300, 2_000, 20_000)
    assert tiny.info["format"] == "movielens-csv"
    assert tiny.rating_scale == (0.5, 5.0)
    ratings = tiny.interactions["rating"].to_numpy()
    assert set(np.unique(ratings * 2)) <= set(range(1, 11))
    assert 3.0 < ratings.mean() < 4.0  # ML-20M: 3.53
    first = tiny.items.iloc[0]
    assert first["title"] == "Synthetic Movie 1" and 1900 <= int(first["year"]) <= 2015
    listed = {g for text in tiny.items["genres"] for g in text.split(", ")}
    assert listed <= set(GENRES[: TINY.n_genres])


def test_sequence_lengths_and_no_duplicates(tiny: Dataset) -> None:
    lengths = np.bincount(tiny.interactions["user"].to_numpy())
    assert lengths.min() >= TINY.min_user_length
    assert lengths.max() <= TINY.max_length
    assert lengths.sum() == TINY.n_interactions
    clean = preprocess(tiny, PreprocessConfig(min_user_interactions=0, min_item_interactions=0))
    assert clean.n_interactions == TINY.n_interactions  # nothing to de-duplicate


def test_lengths_are_heavy_tailed() -> None:
    data = generate(SynthConfig(n_users=3_000, n_items=2_000, n_interactions=400_000))
    lengths = np.bincount(data.user)
    assert lengths.min() == 20
    assert lengths.mean() > 1.5 * np.median(lengths)  # ML-20M: mean 144, median 68


def test_timestamps_increase_along_each_sequence(tiny: Dataset) -> None:
    frame = chronological(tiny.interactions)
    user = frame["user"].to_numpy()
    stamp = frame["timestamp"].to_numpy(dtype=np.int64)
    same_user = user[1:] == user[:-1]
    assert (np.diff(stamp)[same_user] > 0).all()
    assert stamp.min() >= TINY.first_timestamp and stamp.max() <= TINY.last_timestamp


def test_popularity_is_skewed(tiny: Dataset) -> None:
    counts = np.sort(np.bincount(tiny.interactions["item"].to_numpy(), minlength=tiny.n_items))
    top_share = counts[::-1][: tiny.n_items // 10].sum() / counts.sum()
    assert top_share > 0.3  # 0.1 if popularity were uniform


def test_consecutive_items_share_a_genre_more_than_chance(tmp_path: Path, tiny: Dataset) -> None:
    rate, chance = _same_genre_rate(tiny)
    assert rate > chance + 0.1  # ~0.32 vs ~0.13 here; 0.58 vs 0.12 at ML-20M size
    # Control: no runs and no favourites give about the chance level.
    flat = replace(TINY, mean_genre_run=1.0, favourite_genre_share=0.0)
    flat_rate, flat_chance = _same_genre_rate(
        load_dataset(write_synthetic(flat, tmp_path / "flat", progress=False), use_cache=False)
    )
    assert abs(flat_rate - flat_chance) < 0.1


def test_readme_says_synthetic_and_records_the_config(tiny_folder: Path, tmp_path: Path) -> None:
    text = (tiny_folder / "README.txt").read_text()
    assert "SYNTHETIC" in text.splitlines()[0]
    assert "SCALE BENCHMARKS ONLY" in text
    assert read_synthetic_config(tiny_folder) == TINY
    assert read_synthetic_config(tmp_path) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_users", 0),
        ("n_items", 10),
        ("n_items", 100),  # too small to hold 20k ratings without repeats
        ("n_interactions", 10),
        ("n_interactions", 10**9),
        ("seed", -1),
        ("n_genres", 0),
        ("n_genres", len(GENRES) + 1),
        ("max_user_length", 5),
        ("user_length_sigma", -1.0),
        ("popularity_exponent", -0.5),
        ("n_favourite_genres", 30),
        ("favourite_genre_share", 1.5),
        ("half_star_share", -0.1),
        ("mean_genre_run", 0.5),
        ("last_timestamp", 0),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    values = {
        "n_users": 300,
        "n_items": 2_000,
        "n_interactions": 20_000,
        **{field: value},
    }
    with pytest.raises(ConfigError, match=field):
        SynthConfig(**values)  # type: ignore[arg-type]


def test_config_errors_are_collected() -> None:
    with pytest.raises(ConfigError) as caught:
        SynthConfig(n_users=0, seed=-1, favourite_genre_share=2.0)
    message = str(caught.value)
    assert "n_users" in message and "seed" in message and "favourite_genre_share" in message


@pytest.mark.slow
def test_scale_benchmark_at_medium_size(tmp_path: Path) -> None:
    from recllm.bench.scale import print_table, run_scale

    config = SynthConfig(n_users=5_000, n_items=3_000, n_interactions=600_000)
    figures = run_scale(config, tmp_path, progress=False)
    print_table(figures)
    assert figures["synthetic"] and "SYNTHETIC" in figures["data"]
    load, evaluation = figures["load_preprocess_split"], figures["evaluation"]
    assert load["users"] == 5_000 and load["split"]["test"] == 5_000
    assert evaluation["users_evaluated"] == 5_000
    assert figures["generation"]["seconds"] > 0 and figures["generation"]["peak_rss_mb"] > 0
    for step in (load, evaluation):
        assert step["seconds"] > 0 and step["peak_rss_mb"] > step["baseline_rss_mb"] > 0
        assert step["pass_seconds"] and step["pass_peak_rss"]
    assert figures["passed"]
    # A second run reuses the data folder it is pointed at when the config matches.
    data = tmp_path / "synthetic-ml20m"
    again = run_scale(config, tmp_path / "again", reuse=data, progress=False)
    assert again["generation"]["reused"] == str(data)
