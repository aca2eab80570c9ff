"""Loaders of every supported format: the shared real datasets and small native files.

The native-format files are written here, into ``tmp_path``, in exactly the layout of the
public releases (we do not have those releases); each goes through
``registry.load_dataset`` by path (format detected) and, where a name applies, by name.
"""

from __future__ import annotations

import gzip
import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recllm.data import registry
from recllm.data.loaders import movielens, recbole
from recllm.data.loaders.tabular import ColumnMap
from recllm.data.schema import ITEM_ID, Dataset

# --------------------------------------------------------------------------- helpers


def check_canonical(ds: Dataset) -> None:
    """Dtypes and invariants every loader must produce (see recllm.data.schema)."""
    inter = ds.interactions
    assert inter["user"].dtype == np.int32
    assert inter["item"].dtype == np.int32
    assert inter["timestamp"].dtype == pd.Int64Dtype()
    assert inter["rating"].dtype == np.float32
    assert inter["user"].between(0, ds.n_users - 1).all()
    assert inter["item"].between(0, ds.n_items - 1).all()
    assert ds.n_users == len(ds.user_ids) == inter["user"].nunique()
    assert ds.items[ITEM_ID].is_unique
    assert all(isinstance(u, str) for u in ds.user_ids[:10])
    # Every placeholder of the text template is a column of the item table.
    placeholders = [f for _, f, _, _ in string.Formatter().parse(ds.text_template) if f]
    assert set(placeholders) <= set(ds.items.columns), (ds.text_template, list(ds.items.columns))


def item(ds: Dataset, item_id: str) -> dict[str, str]:
    """The item row of a raw item id, as a dict."""
    rows = ds.items[ds.items[ITEM_ID] == item_id]
    assert len(rows) == 1, f"item {item_id!r} not found once"
    return rows.iloc[0].to_dict()


def raw_pairs(ds: Dataset) -> list[tuple[str, str]]:
    """(raw user id, raw item id) of every interaction, in order."""
    users = ds.user_ids[ds.interactions["user"].to_numpy()]
    items = ds.items[ITEM_ID].to_numpy()[ds.interactions["item"].to_numpy()]
    return list(zip(users.tolist(), items.tolist(), strict=True))


def write_gz_lines(path: Path, lines: list[str]) -> None:
    """Write text lines into a gzip file."""
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))


# ------------------------------------------------------------- shared real datasets


@dataclass(frozen=True)
class SharedCase:
    """Expected sizes of a dataset of the shared data folder."""

    name: str
    users: int
    items: int
    interactions: int
    rating_scale: tuple[float, float] | None
    text_fields: tuple[str, ...]


SHARED = [
    SharedCase("ml-100k", 943, 1682, 100_000, (1.0, 5.0), ("title", "genres", "year")),
    SharedCase("ml-1m", 6040, 3883, 1_000_209, (1.0, 5.0), ("title", "genres", "year")),
    SharedCase(
        "amazon-beauty", 22_363, 12_101, 198_502, None, ("title", "brand", "categories", "price")
    ),
    SharedCase("amazon-musical-instruments", 1429, 900, 10_261, (1.0, 5.0), ()),
]

_LOADED: dict[str, Dataset] = {}


@pytest.fixture
def load_shared(shared_data: Path) -> Callable[[str], Dataset]:
    """Load a shared dataset by name once per test session (parsing, no cache)."""

    def load(name: str) -> Dataset:
        if name not in _LOADED:
            _LOADED[name] = registry.load_dataset(name, data_dir=shared_data, use_cache=False)
        return _LOADED[name]

    return load


@pytest.mark.parametrize("case", SHARED, ids=lambda c: c.name)
def test_shared_dataset_sizes_and_dtypes(
    case: SharedCase, load_shared: Callable[[str], Dataset]
) -> None:
    """Counts, rating scale, text fields and canonical dtypes of each shared dataset."""
    ds = load_shared(case.name)
    assert ds.name == case.name
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (
        case.users,
        case.items,
        case.interactions,
    )
    assert ds.rating_scale == case.rating_scale
    assert set(case.text_fields) <= set(ds.text_fields)
    check_canonical(ds)


def test_ml100k_spot_values(load_shared: Callable[[str], Dataset]) -> None:
    """Item 1 is Toy Story; the first line of u.data is user 196, item 242, 3 stars."""
    ds = load_shared("ml-100k")
    toy = item(ds, "1")
    assert toy["title"] == "Toy Story"
    assert "Animation" in toy["genres"]
    assert toy["year"] == "1995"
    assert item(ds, "267")["title"] == "unknown"  # the one item without a date
    first = ds.interactions.iloc[0]
    assert raw_pairs(ds)[0] == ("196", "242")
    assert (first["rating"], first["timestamp"]) == (3.0, 881250949)
    assert ds.interactions["rating"].isin([1, 2, 3, 4, 5]).all()
    assert ds.interactions["timestamp"].notna().all()


def test_ml1m_reconstructed_copy(load_shared: Callable[[str], Dataset]) -> None:
    """3,706 of 3,883 movies rated; missing timestamps and ratings are NA, not dropped."""
    ds = load_shared("ml-1m")
    inter = ds.interactions
    assert inter["item"].nunique() == 3706
    assert int(inter["timestamp"].isna().sum()) == 512_559
    assert int(inter["rating"].isna().sum()) == 245
    assert ds.info["rows_without_timestamp"] == 512_559
    # Users 1-2999 have every timestamp, later users none.
    user_num = ds.user_ids[inter["user"].to_numpy()].astype(int)
    assert inter["timestamp"][user_num < 3000].notna().all()
    assert inter["timestamp"][user_num >= 3000].isna().all()
    assert raw_pairs(ds)[:2] == [("1", "1193"), ("1", "661")]
    assert inter["timestamp"].iloc[0] == 978300760
    # movies.dat is Latin-1: accented titles decode, trailing articles move to the front.
    assert item(ds, "73")["title"] == "Les Misérables"
    assert item(ds, "1")["genres"] == "Animation, Children's, Comedy"


def test_amazon_beauty_shared(load_shared: Callable[[str], Dataset]) -> None:
    """Implicit feedback; text fields cleaned of newlines, quotes and HTML entities."""
    ds = load_shared("amazon-beauty")
    assert ds.is_implicit
    assert ds.interactions["rating"].isna().all()
    assert ds.interactions["timestamp"].notna().all()
    assert raw_pairs(ds)[0] == ("A1YJEY40YUW4SE", "B004756YJA")
    # A quoted title with an embedded newline parses as one field of one item.
    assert item(ds, "B0001ZYL3Q")["title"] == (
        "TheraNeem Cream - Original Organix South 2 oz Cream Vanilla"
    )
    assert item(ds, "B00004U9V2")["title"].startswith("Crabtree & Evelyn")
    assert item(ds, "B00004TUBL")["sales_type"] == "Home & Kitchen"
    # Doubly escaped entities ("&amp;#39;") are fully unescaped.
    assert item(ds, "B000ABOLZ4")["brand"] == "Kirk's Soap"
    assert item(ds, "B00BSU7H5W")["title"].startswith("XIUstyle™")
    # Floats keep all digits ("1192562", not "1.19256e+06").
    assert item(ds, "B000ABOLZ4")["sales_rank"] == "1192562"
    assert item(ds, "9788072216")["categories"] == "Beauty, Fragrance, Women's, Eau de Parfum"
    assert item(ds, "9788072216")["price"] == "65.86"
    for col in ("title", "brand", "categories"):
        text = ds.items[col].fillna("")
        assert not text.str.contains(r"&(?:amp|quot|lt|gt|#\d+);?", regex=True).any(), col
        assert not text.str.contains("\n").any(), col


def test_amazon_musical_instruments(load_shared: Callable[[str], Dataset]) -> None:
    """Explicit 1-5 ratings with review text (summary + body) on every row."""
    ds = load_shared("amazon-musical-instruments")
    inter = ds.interactions
    assert set(inter["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter["timestamp"].notna().all()
    assert "review" in inter.columns
    assert (inter["review"].str.len() > 0).mean() > 0.99
    assert raw_pairs(ds)[0] == ("A2IBPI20UZIR0U", "1384719342")
    assert inter["review"].iloc[0].startswith("good. Not much to write about here")


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", "1995"),
        ("Usual Suspects, The (1995)", "The Usual Suspects", "1995"),
        ("Misérables, Les (1995)", "Les Misérables", "1995"),
        ("Homme d'Eau, L' (1990)", "L'Homme d'Eau", "1990"),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children (La Cité des enfants perdus)",
            "1995",
        ),
        (
            "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
            "Shanghai Triad (Yao a yao yao dao waipo qiao)",
            "1995",
        ),
        ("Slingshot, The (Kådisbellan ) (1993)", "The Slingshot (Kådisbellan)", "1993"),
        ("Seven (Se7en) (1995)", "Seven (Se7en)", "1995"),
        ("Brother, Can You Spare a Dime? (1975)", "Brother, Can You Spare a Dime?", "1975"),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", "1975"),
        ("Cosmos (1980– )", "Cosmos", "1980"),
        ("unknown", "unknown", ""),
        (" Sixth Sense, The (1999) ", "The Sixth Sense", "1999"),
    ],
)
def test_split_title(raw: str, title: str, year: str) -> None:
    """Year split off; trailing articles moved to the front, also in alternative titles."""
    assert movielens.split_title(raw) == (title, year)


# ------------------------------------------------------- native formats in tmp_path


@dataclass
class NativeCase:
    """A small dataset written in a native format, and what loading it must give."""

    id: str
    write: Callable[[Path], Path]  # writes under the given folder, returns the load path
    name: str | None  # the known name it is found under in data_dir, if any
    users: int
    items: int
    interactions: int
    rating_scale: tuple[float, float] | None
    check: Callable[[Dataset], None] = field(default=lambda ds: None)
    columns: ColumnMap | None = None


def write_ml1m(data_dir: Path) -> Path:
    """MovieLens 1M: ``::`` files, movies.dat in Latin-1."""
    root = data_dir / "ml-1m"
    root.mkdir()
    (root / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
        "2::1357::5::978298709\n3::29::2::978297000\n"
    )
    (root / "movies.dat").write_bytes(
        "29::City of Lost Children, The (Cité des enfants perdus, La) (1995)::Adventure|Sci-Fi\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "1357::Shine (1996)::Drama|Romance\n"
        "3952::Contender, The (2000)::Drama|Thriller\n".encode("latin-1")
    )
    return root


def check_ml1m(ds: Dataset) -> None:
    """Latin-1 titles decoded, articles moved, unrated listed movies kept."""
    lost = item(ds, "29")
    assert lost["title"] == "The City of Lost Children (La Cité des enfants perdus)"
    assert (lost["genres"], lost["year"]) == ("Adventure, Sci-Fi", "1995")
    assert item(ds, "3952")["title"] == "The Contender"  # listed, never rated: kept
    assert raw_pairs(ds)[:3] == [("1", "1193"), ("1", "661"), ("2", "1193")]
    assert ds.interactions["rating"].tolist() == [5, 3, 4, 5, 2]
    assert ds.interactions["timestamp"].iloc[0] == 978300760


def write_ml10m(data_dir: Path) -> Path:
    """MovieLens 10M: half-star ratings, UTF-8 movies.dat, tags.dat, folder ml-10M100K."""
    root = data_dir / "ml-10M100K"
    root.mkdir()
    (root / "ratings.dat").write_text(
        "1::122::5::838985046\n1::185::4.5::838983525\n2::122::0.5::868245777\n"
        "2::26729::3.5::868244562\n"
    )
    (root / "movies.dat").write_text(
        "122::Boomerang (1992)::Comedy|Romance\n"
        "185::Net, The (1995)::Action|Crime|Thriller\n"
        '26729::"Great Performances" Cats (1998)::Musical\n'
        "8684::Man Escaped, A (Un condamné à mort s'est échappé) (1956)::Drama\n",
        encoding="utf-8",
    )
    (root / "tags.dat").write_text(
        "15::185::hackers::1215184630\n20::185::Hackers::1215184631\n"
        "20::185::sandra bullock::1215184632\n20::122::eddie murphy::1215184633\n"
    )
    return root


def check_ml10m(ds: Dataset) -> None:
    """Half stars, quotes kept as text, top tags by frequency."""
    assert ds.interactions["rating"].tolist() == [5.0, 4.5, 0.5, 3.5]
    assert item(ds, "26729")["title"] == '"Great Performances" Cats'  # quotes are text
    assert item(ds, "8684")["title"] == "A Man Escaped (Un condamné à mort s'est échappé)"
    assert item(ds, "185")["title"] == "The Net"
    assert item(ds, "185")["tags"] == "hackers, sandra bullock"  # most frequent first
    assert item(ds, "8684")["tags"] == ""


def write_ml_csv(folder: str) -> Callable[[Path], Path]:
    """MovieLens 20M/25M/latest: CSV files with headers, quoted titles, tags.csv."""

    def write(data_dir: Path) -> Path:
        root = data_dir / folder
        root.mkdir()
        (root / "ratings.csv").write_text(
            "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,11,4.0,1112484676\n"
            "2,11,0.5,974820889\n2,5,5.0,974820691\n3,2,2.5,1262123456\n"
        )
        (root / "movies.csv").write_text(
            "movieId,title,genres\n"
            "2,Jumanji (1995),Adventure|Children|Fantasy\n"
            '5,"Father of the Bride Part II (1995)",Comedy\n'
            '11,"American President, The (1995)",Comedy|Drama|Romance\n'
            '26729,"""Great Performances"" Cats (1998)",Musical\n'
            "131262,Innocence (2014),(no genres listed)\n",
            encoding="utf-8",
        )
        (root / "tags.csv").write_text(
            "userId,movieId,tag,timestamp\n"
            '18,11,"politics, US",1240597180\n'
            "65,11,romance,1240597181\n"
            "65,2,Robin Williams,1240597182\n"
            "70,2,robin williams,1240597183\n"
            "70,2,board game,1240597184\n"
        )
        return root

    return write


def check_ml_csv(ds: Dataset) -> None:
    """Quoted titles with commas, no-genre marker removed, tags joined."""
    assert item(ds, "11")["title"] == "The American President"
    assert item(ds, "11")["genres"] == "Comedy, Drama, Romance"
    assert item(ds, "26729")["title"] == '"Great Performances" Cats'
    assert item(ds, "131262")["genres"] == ""
    assert item(ds, "2")["tags"] == "robin williams, board game"
    assert item(ds, "11")["tags"] == "politics, us, romance"
    assert item(ds, "5")["tags"] == ""
    assert ds.interactions["rating"].tolist() == [3.5, 4.0, 0.5, 5.0, 2.5]


REVIEWS_2014 = [
    {
        "reviewerID": "A1",
        "asin": "B001",
        "reviewerName": 'J "Jo" D',
        "helpful": [0, 0],
        "reviewText": "Works well.",
        "overall": 5.0,
        "summary": "Great",
        "unixReviewTime": 1393545600,
        "reviewTime": "02 28, 2014",
    },
    {
        "reviewerID": "A1",
        "asin": "B002",
        "reviewText": "",
        "overall": 2.0,
        "summary": "Meh",
        "unixReviewTime": 1393632000,
    },
    {
        "reviewerID": "A2",
        "asin": "B001",
        "reviewText": "Nice colour.",
        "overall": 4.0,
        "summary": "",
        "unixReviewTime": 1363392000,
    },
]


def write_amazon_2014(data_dir: Path) -> Path:
    """Amazon 2014: JSON-lines reviews, metadata lines as Python dict literals."""
    root = data_dir / "amazon-beauty"
    root.mkdir()
    write_gz_lines(root / "reviews_Beauty_5.json.gz", [json.dumps(r) for r in REVIEWS_2014])
    meta = [
        "{'asin': 'B001', 'title': 'Rose Lip Balm &amp; Tint', 'price': 12.5, "
        "'salesRank': {'Beauty': 4523}, 'brand': \"Burt's Bees\", "
        "'categories': [['Beauty', 'Skin Care', 'Lips'], ['Beauty', 'Makeup']], "
        "'related': {'also_bought': ['B002']}}",
        "{'asin': 'B002', 'title': 'Nail Polish\\nRed', 'categories': [['Beauty', 'Nails']]}",
        "{'asin': 'B999', 'title': 'Never reviewed', 'categories': [['Beauty']]}",
    ]
    write_gz_lines(root / "meta_Beauty.json.gz", meta)
    return root


def check_amazon_2014(ds: Dataset) -> None:
    """Python-literal metadata, flattened categories, review text built."""
    balm = item(ds, "B001")
    assert balm["title"] == "Rose Lip Balm & Tint"
    assert balm["brand"] == "Burt's Bees"
    assert balm["categories"] == "Beauty, Skin Care, Lips, Makeup"
    assert balm["price"] == "12.5"
    assert item(ds, "B002")["title"] == "Nail Polish Red"  # embedded newline: one line
    assert "B999" not in set(ds.items[ITEM_ID])  # metadata of unreviewed items is dropped
    assert ds.interactions["review"].tolist() == ["Great. Works well.", "Meh", "Nice colour."]
    assert ds.interactions["rating"].tolist() == [5.0, 2.0, 4.0]
    assert ds.interactions["timestamp"].tolist() == [1393545600, 1393632000, 1363392000]


def write_amazon_2018(data_dir: Path) -> Path:
    """Amazon 2018: strict JSON lines for reviews and metadata, ``category`` list."""
    root = data_dir / "amazon-musical-instruments"
    root.mkdir()
    reviews = [
        {
            "overall": 5.0,
            "verified": True,
            "reviewTime": "11 9, 2016",
            "reviewerID": "U1",
            "asin": "0006428320",
            "style": {"Format:": " Paperback"},
            "reviewerName": "Ann",
            "reviewText": "Exactly as described.",
            "summary": "Five Stars",
            "unixReviewTime": 1478649600,
            "vote": "2",
        },
        {"overall": 3.0, "reviewerID": "U2", "asin": "0006428320", "unixReviewTime": 1478649601},
        {"overall": 1.0, "reviewerID": "U2", "asin": "B000068NW5", "unixReviewTime": 1478649602},
    ]
    write_gz_lines(root / "Musical_Instruments_5.json.gz", [json.dumps(r) for r in reviews])
    meta = [
        {
            "asin": "0006428320",
            "title": "Six Sonatas For Two Flutes Or Violins, Volume 2 (#4-6)",
            "brand": "Graphite",
            "category": ["Musical Instruments", "Instrument Accessories", "Sheet Music"],
            "price": "$12.99",
            "description": ["Sheet music.", "Two flutes &amp; violins."],
            "also_buy": ["B000068NW5"],
        },
        {
            "asin": "B000068NW5",
            "title": "Cable 10ft",
            "category": ["Musical Instruments"],
            "price": "",
        },
    ]
    write_gz_lines(root / "meta_Musical_Instruments.json.gz", [json.dumps(m) for m in meta])
    return root


def check_amazon_2018(ds: Dataset) -> None:
    """JSON metadata, dollar sign stripped, list description joined."""
    sheet = item(ds, "0006428320")
    assert sheet["price"] == "12.99"
    assert sheet["categories"] == "Musical Instruments, Instrument Accessories, Sheet Music"
    assert sheet["description"] == "Sheet music. Two flutes & violins."
    assert item(ds, "B000068NW5")["brand"] == ""
    assert ds.interactions["review"].tolist() == ["Five Stars. Exactly as described.", "", ""]


def write_recbole(data_dir: Path) -> Path:
    """RecBole atomic files: typed header, quoted multi-line title, token_seq field."""
    root = data_dir / "mini"
    root.mkdir()
    (root / "mini.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti1\t4.0\t978300760\nu1\ti2\t2.0\t978300761.0\nu2\ti1\t5.0\t978300762\n"
    )
    (root / "mini.item").write_text(
        "item_id:token\ttitle:token\tcategories:token_seq\tprice:float\tbrand:token\n"
        "i1\t\"Cream\nVanilla\"\t'Beauty', 'Skin Care', \"Women's\"\t11.28\tOrganix\n"
        "i2\tBath &amp; Body Set\t'Beauty', 'Bath & Body'\t1192562.0\t\n"
        "i3\tUnused\t'Beauty'\t\tX\n"
    )
    return root / "mini.inter"


def check_recbole(ds: Dataset) -> None:
    """Multi-line title joined, token_seq unquoted, floats kept whole."""
    cream = item(ds, "i1")
    assert cream["title"] == "Cream Vanilla"
    assert cream["categories"] == "Beauty, Skin Care, Women's"
    assert cream["price"] == "11.28"
    assert item(ds, "i2")["title"] == "Bath & Body Set"
    assert item(ds, "i2")["price"] == "1192562"
    assert item(ds, "i3")["price"] == ""
    assert ds.interactions["timestamp"].tolist() == [978300760, 978300761, 978300762]


def write_csv_table(data_dir: Path) -> Path:
    """A plain CSV with its own column names, read through a ColumnMap."""
    path = data_dir / "clicks.csv"
    path.write_text(
        'uid,iid,ts,stars,comment\na,x,100,4,"good, really"\na,y,200,5,\nb,x,150,3,fine\n'
    )
    return path


def write_parquet_table(data_dir: Path) -> Path:
    """A Parquet file with integer ids and datetime timestamps."""
    path = data_dir / "events.parquet"
    pd.DataFrame(
        {
            "member": [10, 10, 20, 30],
            "product": [7, 8, 7, 9],
            "when": pd.to_datetime([100, 200, 150, 300], unit="s"),
            "score": [1.0, 0.5, 1.0, 0.25],
        }
    ).to_parquet(path)
    return path


def check_csv_table(ds: Dataset) -> None:
    """Mapped columns, quoted review text."""
    assert raw_pairs(ds) == [("a", "x"), ("a", "y"), ("b", "x")]
    assert ds.interactions["timestamp"].tolist() == [100, 200, 150]
    assert ds.interactions["review"].tolist()[0] == "good, really"
    assert ds.info["columns"]["user_id"] == "uid"


def check_parquet_table(ds: Dataset) -> None:
    """Integer ids as strings, datetimes as epoch seconds."""
    assert raw_pairs(ds)[0] == ("10", "7")
    assert ds.interactions["timestamp"].tolist() == [100, 200, 150, 300]  # seconds, not ns
    assert ds.interactions["rating"].tolist() == [1.0, 0.5, 1.0, 0.25]


NATIVE = [
    NativeCase("ml-1m-dat", write_ml1m, "ml-1m", 3, 5, 5, (1.0, 5.0), check_ml1m),
    NativeCase("ml-10m-dat", write_ml10m, "ml-10m", 2, 4, 4, (0.5, 5.0), check_ml10m),
    NativeCase("ml-20m-csv", write_ml_csv("ml-20m"), "ml-20m", 3, 5, 5, (0.5, 5.0), check_ml_csv),
    NativeCase("ml-25m-csv", write_ml_csv("ml-25m"), "ml-25m", 3, 5, 5, (0.5, 5.0), check_ml_csv),
    NativeCase(
        "amazon-2014", write_amazon_2014, "amazon-beauty", 2, 2, 3, (1.0, 5.0), check_amazon_2014
    ),
    NativeCase(
        "amazon-2018",
        write_amazon_2018,
        "amazon-musical-instruments",
        2,
        2,
        3,
        (1.0, 5.0),
        check_amazon_2018,
    ),
    NativeCase("recbole", write_recbole, None, 2, 3, 3, (2.0, 5.0), check_recbole),
    NativeCase(
        "csv",
        write_csv_table,
        None,
        2,
        2,
        3,
        (3.0, 5.0),
        check_csv_table,
        ColumnMap(user_id="uid", item_id="iid", timestamp="ts", rating="stars", review="comment"),
    ),
    NativeCase(
        "parquet",
        write_parquet_table,
        None,
        3,
        3,
        4,
        (0.25, 1.0),
        check_parquet_table,
        ColumnMap(user_id="member", item_id="product", timestamp="when", rating="score"),
    ),
]


def check_native(case: NativeCase, ds: Dataset) -> None:
    """Sizes, scale, canonical form and the case's own checks."""
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (
        case.users,
        case.items,
        case.interactions,
    )
    assert ds.rating_scale == case.rating_scale
    check_canonical(ds)
    case.check(ds)


@pytest.mark.parametrize("case", NATIVE, ids=lambda c: c.id)
def test_native_format_by_path(case: NativeCase, tmp_path: Path) -> None:
    """The format is detected from the files; the result is the same through the cache."""
    source = case.write(tmp_path)
    cache = tmp_path / "cache"
    first = registry.load_dataset(source, cache_dir=cache, columns=case.columns)
    check_native(case, first)
    second = registry.load_dataset(source, cache_dir=cache, columns=case.columns)
    check_native(case, second)


@pytest.mark.parametrize("case", [c for c in NATIVE if c.name], ids=lambda c: c.id)
def test_native_format_by_name(case: NativeCase, tmp_path: Path) -> None:
    """A known name finds its folder under the data directory."""
    case.write(tmp_path)
    ds = registry.load_dataset(case.name, data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert ds.name == case.name
    check_native(case, ds)


def test_ml100k_native_layout_by_path(shared_data: Path, tmp_path: Path) -> None:
    """The ml-100k folder is recognised by path too, and named after its folder."""
    ds = registry.load_dataset(shared_data / "ml-100k", cache_dir=tmp_path)
    assert ds.name == "ml-100k"
    assert ds.info["format"] == "movielens-100k"


def test_recbole_folder_and_inter_file_agree(tmp_path: Path) -> None:
    """Loading the folder or its .inter file gives the same dataset."""
    inter = write_recbole(tmp_path)
    by_file = registry.load_dataset(inter, use_cache=False)
    by_folder = registry.load_dataset(inter.parent, use_cache=False)
    pd.testing.assert_frame_equal(by_file.interactions, by_folder.interactions)
    pd.testing.assert_frame_equal(by_file.items, by_folder.items)
    assert by_file.name == "mini"
    assert by_file.text_template == (
        "Title: {title} | Brand: {brand} | Categories: {categories} | Price: {price}"
    )


def test_recbole_clean_token_seq() -> None:
    """Python-literal token sequences lose their quotes; plain ones split on spaces."""
    assert recbole.clean_token_seq("'Beauty', \"Women's\", 'A &amp; B'") == (
        "Beauty, Women's, A & B"
    )
    assert recbole.clean_token_seq("rock pop") == "rock, pop"
    assert recbole.clean_token_seq("") == ""


def test_tabular_with_item_file(tmp_path: Path) -> None:
    """Plain CSV interactions plus an item CSV: every non-id column is a text field."""
    from recllm.data.loaders.tabular import load_table

    inter = write_csv_table(tmp_path)
    items = tmp_path / "items.csv"
    items.write_text('item_id,title,genre\nx,"Alpha, the film",drama\ny,Beta,\nz,Gamma,comedy\n')
    ds = load_table(
        inter, ColumnMap(user_id="uid", item_id="iid", timestamp="ts"), items_path=items
    )
    assert ds.n_items == 3
    assert item(ds, "x")["title"] == "Alpha, the film"
    assert ds.text_template == "Title: {title} | Genre: {genre}"
    assert ds.is_implicit  # no rating column mapped, none named "rating"
    check_canonical(ds)


def test_column_map_parse() -> None:
    """``KEY=COLUMN`` pairs; unknown keys are a config error."""
    from recllm.errors import ConfigError

    assert ColumnMap.parse("user_id=uid, item_id=iid,timestamp=ts") == ColumnMap(
        user_id="uid", item_id="iid", timestamp="ts"
    )
    with pytest.raises(ConfigError, match="'colour=x'"):
        ColumnMap.parse("colour=x")


@pytest.mark.parametrize(
    ("write", "file_name", "name"),
    [
        (write_ml1m, "ratings.dat", "ml-1m"),
        (write_amazon_2014, "reviews_Beauty_5.json.gz", "amazon-beauty"),
        (write_amazon_2018, "meta_Musical_Instruments.json.gz", "amazon-musical-instruments"),
    ],
)
def test_file_of_a_layout_loads_its_folder(
    write: Callable[[Path], Path], file_name: str, name: str, tmp_path: Path
) -> None:
    """A path to one file of a native layout loads the whole folder, not a plain table."""
    root = write(tmp_path)
    ds = registry.load_dataset(root / file_name, use_cache=False)
    assert ds.name == name
    assert ds.info["format"] != "table"
