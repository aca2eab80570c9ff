"""Bad input gives a clear RecLLMError naming the file, the line and the problem.

Each case writes a small broken dataset into ``tmp_path`` and loads it through
``registry.load_dataset``; the assertions are on the message, not only the type.
Where a loader discards or fills in anything, it must say so in the log.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from recllm.data import registry
from recllm.data.loaders.tabular import ColumnMap
from recllm.errors import (
    ConfigError,
    DataFormatError,
    DatasetNotFoundError,
    RecLLMError,
)

GOOD_UDATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
GOOD_UITEM = "242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join(["0"] * 18 + ["1"]) + "\n"


def write(path: Path, content: str | bytes) -> Path:
    """Write text (UTF-8) or bytes, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def gz(lines: list[str]) -> bytes:
    """Gzip-compressed text lines."""
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))


def ml100k(tmp: Path, udata: str | bytes = GOOD_UDATA, uitem: str | None = GOOD_UITEM) -> Path:
    """An ml-100k folder (u.data and u.item; u.genre omitted, which is allowed)."""
    root = tmp / "ml-100k"
    write(root / "u.data", udata)
    if uitem is not None:
        write(root / "u.item", uitem)
    return root


def ml_csv(tmp: Path, ratings: str | bytes, movies: str | bytes | None = None) -> Path:
    """An ml-20m folder with ratings.csv and movies.csv."""
    root = tmp / "ml-20m"
    write(root / "ratings.csv", ratings)
    write(root / "movies.csv", movies or "movieId,title,genres\n1,Toy Story (1995),Animation\n")
    return root


def ml_dat(tmp: Path, ratings: str) -> Path:
    """An ml-1m folder with ``::`` files."""
    root = tmp / "ml-1m"
    write(root / "ratings.dat", ratings)
    write(root / "movies.dat", "1::Toy Story (1995)::Animation\n2::Jumanji (1995)::Adventure\n")
    return root


def review(user: str, asin: str, **extra: object) -> str:
    """One Amazon review as a JSON line."""
    record = {"reviewerID": user, "asin": asin, "overall": 4.0, "unixReviewTime": 1393545600}
    record.update(extra)
    return json.dumps(record)


def amazon(tmp: Path, reviews: bytes, meta: bytes | None = None) -> Path:
    """An Amazon 2014 folder with a reviews file and optionally a metadata file."""
    root = tmp / "amazon-beauty"
    write(root / "reviews_Beauty_5.json.gz", reviews)
    if meta is not None:
        write(root / "meta_Beauty.json.gz", meta)
    return root


def recbole_dir(tmp: Path, inter: str | bytes, item: str | bytes | None = None) -> Path:
    """A RecBole folder ``mini`` with mini.inter (and mini.item)."""
    root = tmp / "mini"
    write(root / "mini.inter", inter)
    if item is not None:
        write(root / "mini.item", item)
    return root


INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def truncated(data: bytes) -> bytes:
    """The first half of a gzip stream, as a cut download leaves it."""
    return data[: len(data) // 2]


def many_reviews(n: int = 3000) -> bytes:
    """A gzip reviews file large enough that cutting it leaves whole lines."""
    return gz([review(f"U{i}", f"B{i % 50}", reviewText=f"text {i} " * 5) for i in range(n)])


@dataclass
class BadCase:
    """A broken input, the error type and the fragments its message must contain."""

    id: str
    make: Callable[[Path], Path | str]
    error: type[RecLLMError]
    fragments: tuple[str, ...]
    columns: ColumnMap | None = None
    line: int | None = None  # the line DataFormatError.line must name


BAD = [
    # ---- missing things
    BadCase(
        "missing-u.item",
        lambda t: ml100k(t, uitem=None),
        DatasetNotFoundError,
        ("not found", "u.item"),
    ),
    BadCase("no-such-path", lambda t: str(t / "nowhere"), DatasetNotFoundError, ("nowhere",)),
    BadCase(
        "unknown-name",
        lambda t: "ml-5m",
        DatasetNotFoundError,
        ("unknown dataset 'ml-5m'", "ml-100k", "amazon-beauty"),
    ),
    BadCase(
        "no-known-layout",
        lambda t: write(t / "stuff" / "notes.txt", "hello").parent,
        DatasetNotFoundError,
        ("no known dataset layout", "notes.txt"),
    ),
    BadCase(
        "mapped-column-absent",
        lambda t: write(t / "x.csv", "user,item\na,b\n"),
        DataFormatError,
        ("x.csv", "no column 'uid' for user_id", "['user', 'item']"),
        ColumnMap(user_id="uid", item_id="item"),
    ),
    # ---- separators and headers
    BadCase(
        "comma-separated-u.data",
        lambda t: ml100k(t, udata="196,242,3,881250949\n186,302,3,891717742\n"),
        DataFormatError,
        ("u.data", "expected 4 fields separated by '\\t', found 1", "','", "wrong separator"),
        line=1,
    ),
    BadCase(
        "u.data-extra-field",
        lambda t: ml100k(t, udata=GOOD_UDATA + "1\t2\t3\t4\t5\n"),
        DataFormatError,
        ("u.data", "expected 4 fields", "found 5"),
        line=4,
    ),
    BadCase(
        "misnamed-header",
        lambda t: ml_csv(t, "user,movie,rating,timestamp\n1,1,4.0,1\n"),
        DataFormatError,
        ("ratings.csv", "header lacks column(s) ['userId', 'movieId']", "'user'"),
        line=1,
    ),
    BadCase(
        "missing-header-column",
        lambda t: ml_csv(t, "userId,movieId,timestamp\n1,1,1\n"),
        DataFormatError,
        ("ratings.csv", "header lacks column(s) ['rating']"),
        line=1,
    ),
    BadCase(
        "semicolon-csv",
        lambda t: ml_csv(t, "userId;movieId;rating;timestamp\n1;1;4.0;1\n"),
        DataFormatError,
        ("ratings.csv", "header lacks", "';'", "wrong separator"),
        line=1,
    ),
    BadCase(
        "movies.csv-header",
        lambda t: ml_csv(
            t, "userId,movieId,rating,timestamp\n1,1,4,1\n", "id,name\n1,Toy Story (1995)\n"
        ),
        DataFormatError,
        ("movies.csv", "header lacks column(s) ['movieId', 'title', 'genres']"),
        line=1,
    ),
    # ---- non-numeric values
    BadCase(
        "non-numeric-user-id",
        lambda t: ml100k(t, udata=GOOD_UDATA + "abc\t242\t3\t881250949\n"),
        DataFormatError,
        ("u.data", "column 'user_id' must be numeric, found 'abc'"),
        line=4,
    ),
    BadCase(
        "non-numeric-timestamp-dat",
        lambda t: ml_dat(t, "1::1::5::978300760\n1::2::3::yesterday\n"),
        DataFormatError,
        ("ratings.dat", "column 'timestamp' must be numeric, found 'yesterday'"),
        line=2,
    ),
    BadCase(
        "non-numeric-rating-csv",
        lambda t: ml_csv(t, "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,1,five,2\n"),
        DataFormatError,
        ("ratings.csv", "column 'rating' must be numeric, found 'five'"),
        line=3,
    ),
    BadCase(
        "non-numeric-id-on-quoted-line",
        lambda t: ml_csv(
            t,
            "userId,movieId,rating,timestamp\n1,1,4.0,1\n",
            'movieId,title,genres\n1,"Toy Story, The (1995)",A\n'
            '"2x","Jumanji\n(1995)",B\n3,Heat (1995),C\n',
        ),
        DataFormatError,
        ("movies.csv", "column 'movieId' must be numeric, found '2x'"),
        line=3,
    ),
    BadCase(
        "fractional-id",
        lambda t: ml_dat(t, "1::1::5::978300760\n1.5::2::3::978300761\n"),
        DataFormatError,
        ("ratings.dat", "column 'user_id' must hold integer ids, found 1.5"),
    ),
    BadCase(
        "table-timestamp",
        lambda t: write(t / "log.csv", "uid,iid,ts\na,x,100\nb,y,200\nc,z,2020-01-01\n"),
        DataFormatError,
        ("log.csv", "column 'ts' must be numeric, found '2020-01-01'"),
        ColumnMap(user_id="uid", item_id="iid", timestamp="ts"),
        line=4,
    ),
    BadCase(
        "table-empty-user",
        lambda t: write(t / "log.csv", "uid,iid\na,x\n,y\n"),
        DataFormatError,
        ("log.csv", "column 'uid' is empty"),
        ColumnMap(user_id="uid", item_id="iid"),
        line=3,
    ),
    BadCase(
        "recbole-non-numeric-rating",
        lambda t: recbole_dir(t, INTER_HEADER + "u1\ti1\t4\t1\nu2\ti1\tgood\t2\n"),
        DataFormatError,
        ("mini.inter", "column 'rating:float' must be numeric, found 'good'"),
        line=3,
    ),
    BadCase(
        "amazon-non-numeric-overall",
        lambda t: amazon(t, gz([review("A", "B1"), review("A", "B2", overall="five")])),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "'overall' must be a number, found 'five'"),
        line=2,
    ),
    # ---- truncated and empty files
    BadCase(
        "truncated-csv-gz",
        lambda t: (
            write(
                t / "ml-1m" / "ratings_reconstructed.csv.gz",
                truncated(
                    gzip.compress(
                        b"user_id,movie_id,rating,timestamp\n"
                        + b"".join(
                            b"%d,%d,4,%d\n" % (i, i % 97, 978300760 + i) for i in range(5000)
                        )
                    )
                ),
            ).parent
        ),
        DataFormatError,
        ("ratings_reconstructed.csv.gz", "gzip stream is truncated or corrupt"),
    ),
    BadCase(
        "truncated-amazon-gz",
        lambda t: amazon(t, truncated(many_reviews())),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "gzip stream is truncated or corrupt after line"),
    ),
    BadCase("empty-u.data", lambda t: ml100k(t, udata=""), DataFormatError, ("u.data", "empty")),
    BadCase(
        "header-only-csv",
        lambda t: ml_csv(t, "userId,movieId,rating,timestamp\n"),
        DataFormatError,
        ("ratings.csv", "no data rows"),
    ),
    BadCase(
        "empty-amazon-gz",
        lambda t: amazon(t, gzip.compress(b"")),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "no reviews"),
    ),
    BadCase(
        "empty-recbole",
        lambda t: recbole_dir(t, ""),
        DataFormatError,
        ("mini.inter", "empty"),
        line=1,
    ),
    BadCase(
        "empty-table",
        lambda t: write(t / "log.csv", ""),
        DataFormatError,
        ("log.csv", "empty"),
    ),
    # ---- encodings
    BadCase(
        "non-utf8-csv",
        lambda t: ml_csv(
            t,
            b"userId,movieId,rating,timestamp\n1,1,4,1\n1,2,4,2\n1,3,4,3\n2,1,\xff\xfe,4\n",
        ),
        DataFormatError,
        ("ratings.csv", "not valid UTF-8", "\\xff"),
        line=5,
    ),
    BadCase(
        "non-utf8-movies-title",
        lambda t: ml_csv(
            t,
            "userId,movieId,rating,timestamp\n1,1,4,1\n",
            b"movieId,title,genres\n1,Toy Story (1995),A\n2,Cit\xe9 (1995),B\n",
        ),
        DataFormatError,
        ("movies.csv", "not valid UTF-8"),
        line=3,
    ),
    BadCase(
        "non-utf8-amazon",
        lambda t: amazon(
            t,
            gzip.compress(
                "\n".join([review("A", f"B{i}") for i in range(2000)]).encode()
                + b'\n{"reviewerID": "Z\xe9", "asin": "B1"}\n'
            ),
        ),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "not valid utf-8", "\\xe9"),
        line=2001,
    ),
    BadCase(
        "non-utf8-recbole-item",
        lambda t: recbole_dir(
            t,
            INTER_HEADER + "u1\ti1\t4\t1\n",
            b"item_id:token\ttitle:token\ni1\tCr\xe8me\n",
        ),
        DataFormatError,
        ("mini.item", "not valid UTF-8"),
        line=2,
    ),
    # ---- Amazon JSON / Python literals
    BadCase(
        "amazon-meta-neither-json-nor-literal",
        lambda t: amazon(
            t,
            gz([review("A", "B1")]),
            gz(["{'asin': 'B1', 'title': 'Fine'}", "{'asin': 'B2', 'title': 'Cut off"]),
        ),
        DataFormatError,
        ("meta_Beauty.json.gz", "neither JSON", "nor a Python dict literal"),
        line=2,
    ),
    BadCase(
        "amazon-review-not-json",
        lambda t: amazon(t, gz([review("A", "B1"), "", "{'reviewerID': 'A', 'asin': 'B'}"])),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "not valid JSON"),
        line=3,
    ),
    BadCase(
        "amazon-review-not-object",
        lambda t: amazon(t, gz([review("A", "B1"), "[1, 2]"])),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "expected an object, found list"),
        line=2,
    ),
    BadCase(
        "amazon-review-without-asin",
        lambda t: amazon(t, gz([review("A", "B1"), json.dumps({"reviewerID": "A"})])),
        DataFormatError,
        ("reviews_Beauty_5.json.gz", "lacks the key 'asin'"),
        line=2,
    ),
    BadCase(
        "amazon-two-review-files",
        lambda t: (
            write(
                amazon(t, gz([review("A", "B1")])) / "reviews_Toys_5.json.gz",
                gz([review("A", "B")]),
            ).parent
        ),
        DataFormatError,
        ("several Amazon review files", "reviews_Beauty_5.json.gz", "reviews_Toys_5.json.gz"),
    ),
    # ---- RecBole headers
    BadCase(
        "recbole-header-without-types",
        lambda t: recbole_dir(t, "user_id\titem_id\trating\nu1\ti1\t4\n"),
        DataFormatError,
        ("mini.inter", "header field 'user_id' is not 'name:type'"),
        line=1,
    ),
    BadCase(
        "recbole-space-separated-header",
        lambda t: recbole_dir(t, "user_id:token item_id:token\nu1 i1\n"),
        DataFormatError,
        ("mini.inter", "tab-separated"),
        line=1,
    ),
    BadCase(
        "recbole-unknown-type",
        lambda t: recbole_dir(t, "user_id:token\titem_id:integer\nu1\t1\n"),
        DataFormatError,
        ("mini.inter", "'item_id:integer'"),
        line=1,
    ),
    BadCase(
        "recbole-without-item-field",
        lambda t: recbole_dir(t, "user_id:token\tproduct:token\nu1\ti1\n"),
        DataFormatError,
        ("mini.inter", "lacks field(s) ['item_id']"),
        line=1,
    ),
    BadCase(
        "recbole-wrong-field-count",
        lambda t: recbole_dir(t, INTER_HEADER + "u1\ti1\t4\t1\nu1\ti2\t5\n"),
        DataFormatError,
        ("mini.inter", "expected 4 fields", "found 3"),
        line=3,
    ),
    # ---- Parquet
    BadCase(
        "corrupt-parquet",
        lambda t: write(t / "events.parquet", b"PAR1 this is not parquet"),
        DataFormatError,
        ("events.parquet", "not a readable Parquet file"),
    ),
]


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_input_is_a_clear_error(case: BadCase, tmp_path: Path) -> None:
    """Each broken input raises the expected error whose message names what is wrong."""
    source = case.make(tmp_path)
    with pytest.raises(case.error) as info:
        registry.load_dataset(
            source, data_dir=tmp_path, cache_dir=tmp_path / "cache", columns=case.columns
        )
    message = str(info.value)
    for fragment in case.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if case.line is not None:
        assert isinstance(info.value, DataFormatError)
        assert info.value.line == case.line, message
        assert f"line {case.line}:" in message
    # Nothing half-parsed was cached.
    assert not list((tmp_path / "cache").glob("datasets/*/meta.json"))


def test_known_name_missing_from_data_dir(tmp_path: Path) -> None:
    """A known dataset that is not downloaded says where it looked and how to fix it."""
    with pytest.raises(DatasetNotFoundError) as info:
        registry.load_dataset("ml-20m", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert str(tmp_path) in message
    assert "RECLLM_DATA_DIR" in message
    assert "recllm data download ml-20m" in message


def test_errors_are_recllm_errors() -> None:
    """The CLI catches RecLLMError; the concrete types also keep their builtin bases."""
    assert issubclass(DataFormatError, RecLLMError) and issubclass(DataFormatError, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    err = DataFormatError("x.csv", "bad", 3)
    assert (str(err), err.path, err.line, err.problem) == ("x.csv, line 3: bad", "x.csv", 3, "bad")


def test_same_column_for_two_fields(tmp_path: Path) -> None:
    """A column mapping that uses one column twice is a config error."""
    path = write(tmp_path / "log.csv", "uid,iid\na,x\n")
    with pytest.raises(ConfigError, match="'uid'"):
        registry.load_dataset(
            path, cache_dir=tmp_path, columns=ColumnMap(user_id="uid", item_id="uid")
        )


# ------------------------------------------------------------- nothing dropped silently


def test_amazon_discards_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Metadata without asin, duplicate metadata, unreviewed items: each is logged."""
    root = amazon(
        tmp_path,
        gz([review("A", "B1"), review("A", "B3"), review("B", "B1", overall=None)]),
        gz(
            [
                "{'asin': 'B1', 'title': 'First'}",
                "{'title': 'No asin'}",
                "{'asin': 'B1', 'title': 'Duplicate'}",
                "{'asin': 'B2', 'title': 'Never reviewed'}",
            ]
        ),
    )
    with caplog.at_level(logging.INFO, logger="recllm"):
        ds = registry.load_dataset(root, use_cache=False)
    log = caplog.text
    assert "ignored 1 record(s) without an 'asin'" in log
    assert "1 item(s) are listed more than once (e.g. 'B1')" in log
    assert "dropped 1 of 3 items" in log
    assert "1 item(s) have interactions but no metadata (e.g. 'B3')" in log
    assert "1 review(s) have no 'overall'" in log
    titles = dict(zip(ds.items["item_id"], ds.items["title"], strict=True))
    assert titles["B1"] == "First"
    assert pd.isna(titles["B3"]) or titles["B3"] == ""
    assert ds.interactions["rating"].isna().sum() == 1  # kept, not dropped
    assert ds.info["items_dropped_without_interactions"] == 1


def test_missing_amazon_metadata_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without meta_X.json.gz items have no text; the loader says so."""
    root = amazon(tmp_path, gz([review("A", "B1")]))
    with caplog.at_level(logging.INFO, logger="recllm"):
        ds = registry.load_dataset(root, use_cache=False)
    assert "no meta_Beauty file" in caplog.text
    assert ds.text_template == "Product {item_id}"


def test_movielens_tag_discards_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Tags of movies missing from movies.csv, and empty tags, are logged."""
    root = ml_csv(tmp_path, "userId,movieId,rating,timestamp\n1,1,4,1\n")
    write(root / "tags.csv", 'userId,movieId,tag,timestamp\n1,1,fun,1\n1,99,lost,2\n1,1," ",3\n')
    with caplog.at_level(logging.INFO, logger="recllm"):
        ds = registry.load_dataset(root, use_cache=False)
    assert "ignored 1 tag(s) of 1 movie(s) that the movies file does not list" in caplog.text
    assert "ignored 1 empty tag(s)" in caplog.text
    assert ds.items["tags"].tolist() == ["fun"]


def test_recbole_ignored_fields_and_fractional_times_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unused .inter fields and sub-second timestamps are reported, rows are kept."""
    root = recbole_dir(
        tmp_path,
        "user_id:token\titem_id:token\tlabel:float\ttimestamp:float\n"
        "u1\ti1\t1\t100.5\nu1\ti2\t0\t101\n",
    )
    with caplog.at_level(logging.INFO, logger="recllm"):
        ds = registry.load_dataset(root, use_cache=False)
    assert "field(s) ['label'] are not used" in caplog.text
    assert "1 timestamp(s) have fractions of a second" in caplog.text
    assert ds.interactions["timestamp"].tolist() == [100, 101]
    assert ds.n_interactions == 2


def test_interactions_with_unknown_items_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ratings of a movie that movies.dat lacks keep the movie, with empty text."""
    root = ml_dat(tmp_path, "1::1::5::978300760\n1::77::3::978300761\n")
    with caplog.at_level(logging.INFO, logger="recllm"):
        ds = registry.load_dataset(root, use_cache=False)
    assert "1 item(s) have interactions but no metadata (e.g. '77')" in caplog.text
    assert ds.n_interactions == 2
    assert ds.info["items_without_metadata"] == 1


def test_an_unreadable_data_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No read permission (simulated: these tests may run as root, who reads anything)."""
    (tmp_path / "events.csv").write_text("user_id,item_id\n1,2\n")
    real_open = open

    def denied(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).endswith("events.csv"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(DataFormatError, match=r"events\.csv: cannot be read \(Permission denied\)"):
        registry.load_dataset(tmp_path / "events.csv", cache_dir=tmp_path / "cache")


def test_a_timestamp_beyond_any_date_is_a_clear_error(tmp_path: Path) -> None:
    """Found by the fuzz test: 1e300 seconds overflowed the integer column with a traceback."""
    write(tmp_path / "events.csv", "user_id,item_id,timestamp\n1,2,5\n1,3,1e300\n")
    with pytest.raises(DataFormatError, match=r"timestamp 1e\+300 in interaction row 1 is out"):
        registry.load_dataset(tmp_path / "events.csv", cache_dir=tmp_path / "cache")
