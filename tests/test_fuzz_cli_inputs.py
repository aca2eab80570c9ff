"""Fuzz tests (issue 27): whatever a careless or hostile user passes as config overrides or
data files, the CLI exits 0 or 2, never with a traceback, and a failed run leaves no
partial run folder. Examples are bounded so that the default suite stays fast; run with
``--hypothesis-show-statistics`` to see how many cases each test tried."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import write_toy_movielens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipes.test_run_folder import sasrec_config

from recllm.cli import main
from recllm.config import to_dict


def fuzz(examples: int) -> settings:
    """Bounded, derandomised (the same cases every run: a failure is reproducible)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# Values people write (or mistype) into YAML: numbers at and past the edges, YAML's own
# spellings of nothing, NaN and infinity, lists, mappings, and broken syntax.
ODD = st.sampled_from(
    [".nan", "nan", ".inf", "-.inf", "1e309", "-0.0", "~", "", "null", "yes", "[1, 2]",
     "{a: 1}", "][", "'", "1e-300", "3e-4", "0x10", "fast", "2**40", "18446744073709551616"]
)  # fmt: skip
SMALL_INT = st.integers(-2, 3).map(str)
SHARE = st.floats(-1.0, 2.0, allow_nan=False).map(repr)
KEYS: dict[str, st.SearchStrategy[str]] = {
    "trainer.lr": SHARE | ODD,
    "trainer.grad_clip": SHARE | ODD,
    "trainer.weight_decay": SHARE | ODD,
    "trainer.warmup_ratio": SHARE | ODD,
    "trainer.seed": st.sampled_from(["-1", "0", "7", "4294967295", "4294967296"]) | ODD,
    "trainer.num_threads": SMALL_INT | ODD,
    "trainer.epochs": SMALL_INT,
    "trainer.batch_size": st.sampled_from(["0", "-4", "4", "64"]) | ODD,
    "trainer.eval_every": SMALL_INT,
    "trainer.keep_checkpoints": SMALL_INT,
    "trainer.loss": st.sampled_from(["bpr", "ce", "bce", "sampled_ce", "mse", "1"]),
    "trainer.windows": st.sampled_from(["last", "all", "some"]),
    "trainer.n_negatives": SMALL_INT,
    "data.preprocess.min_user_interactions": st.sampled_from(["0", "3", "50", "-1"]) | ODD,
    "data.preprocess.min_item_interactions": st.sampled_from(["0", "50", "-1"]),
    "data.preprocess.weight": st.sampled_from(["auto", "rating", "implicit", "column:x", "dwell"]),
    "data.split.protocol": st.sampled_from(["leave_one_out", "temporal", "cold_start", "x"]),
    "data.split.valid_share": SHARE,
    "data.split.seed": st.sampled_from(["-1", "3"]) | ODD,
    "sasrec.dropout": SHARE | ODD,
    "model": st.sampled_from(["sasrec", "bpr-mf", "gpt", "", "[]"]),
    "trainer.bogus": ODD,
    "trainer": ODD,  # a section replaced by a value
    "a.b.c": ODD,
}
OVERRIDES = st.lists(
    st.sampled_from(sorted(KEYS)).flatmap(lambda k: KEYS[k].map(lambda v: f"{k}={v}")),
    min_size=1,
    max_size=3,
)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of ``recllm argv``; any exception other than SystemExit
    escapes, so a traceback fails the test with the case that caused it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def toy_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch SASRec config on toy data (a valid case trains in about a second)."""
    tmp = tmp_path_factory.mktemp("fuzz-config")
    raw = to_dict(sasrec_config(tmp, "unused", epochs=1))
    path = tmp / "toy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


_RUNS = itertools.count()


@fuzz(40)
@given(overrides=OVERRIDES)
def test_fuzzed_config_overrides(toy_yaml: Path, overrides: list[str]) -> None:
    out = toy_yaml.parent / f"run-{next(_RUNS)}"
    threads = torch.get_num_threads()
    try:
        code, err = run_cli(["train", str(toy_yaml), f"output_dir={out}", *overrides])
    finally:
        torch.set_num_threads(threads)  # trainer.num_threads is process-wide
    assert code in (0, 2), (overrides, err)
    assert "Traceback" not in err, (overrides, err)
    if code == 2:
        assert not out.exists(), (overrides, sorted(p.name for p in out.iterdir()))
    else:  # a whole run: config, identity, best weights, a checkpoint, results
        assert {p.name for p in out.iterdir()} >= {
            "config.json",
            "catalogue.json",
            "best",
            "checkpoints",
            "results.json",
        }, overrides


DIGIT = st.integers(0, 9).map(str)  # mostly plausible values, so that loads also succeed
CELL = st.one_of(
    DIGIT,
    DIGIT,
    DIGIT,
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=6),
    st.sampled_from(["", "nan", "NaN", "-1", "0", "1e400", '"', "a,b", "\x00", "é"]),
)
ROWS = st.lists(st.lists(CELL, min_size=4, max_size=4) | st.lists(CELL, max_size=5), max_size=12)
_FILES = itertools.count()


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(row) + "\n" for row in rows)


@fuzz(150)
@given(
    rows=ROWS,
    header=st.sampled_from(["u,i,t,r", "u,i,t,r", "u,i", "u,i,t,r,x", "", "u;i;t;r"]),
    k_core=st.sampled_from([None, "0", "2", "5", "-1"]),
)
def test_fuzzed_csv_files(
    tmp_path: Path, rows: list[list[str]], header: str, k_core: str | None
) -> None:
    path = tmp_path / f"events-{next(_FILES)}.csv"
    path.write_text(header + "\n" + csv_text(rows), encoding="utf-8")
    argv = ["data", "stats", str(path), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--columns", "user_id=u,item_id=i,timestamp=t,rating=r"]
    argv += ["--k-core", k_core] if k_core is not None else []
    code, err = run_cli(argv)
    assert code in (0, 2) and "Traceback" not in err, err


@fuzz(100)
@given(
    lines=st.lists(
        st.lists(CELL, min_size=4, max_size=4).map("\t".join)
        | st.lists(CELL, min_size=1, max_size=5).map("\t".join),
        max_size=10,
    ),
    raw=st.binary(max_size=40),
    corrupt_items=st.booleans(),
)
def test_fuzzed_movielens_folders(
    tmp_path: Path, lines: list[str], raw: bytes, corrupt_items: bool
) -> None:
    folder = write_toy_movielens(tmp_path / f"ml-{next(_FILES)}", n_users=6, n_items=12)
    with (folder / "u.data").open("a") as data:
        data.write("\n".join(lines) + "\n")
    if corrupt_items:
        (folder / "u.item").write_bytes(raw)
    code, err = run_cli(["data", "stats", str(folder), "--cache-dir", str(tmp_path / "c")])
    assert code in (0, 2) and "Traceback" not in err, err


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
REVIEW = st.fixed_dictionaries(
    {},
    optional={
        "reviewerID": JSON_VALUE,
        "asin": JSON_VALUE,
        "overall": JSON_VALUE,
        "unixReviewTime": JSON_VALUE,
        "reviewText": JSON_VALUE,
    },
)


@fuzz(100)
@given(reviews=st.lists(REVIEW, max_size=8), junk=st.sampled_from(["", "{", "[1]", "null"]))
def test_fuzzed_amazon_reviews(tmp_path: Path, reviews: list[dict], junk: str) -> None:
    folder = tmp_path / f"amazon-{next(_FILES)}"
    folder.mkdir()
    text = "\n".join(json.dumps(r, allow_nan=True) for r in reviews) + "\n" + junk + "\n"
    with gzip.open(folder / "reviews_Fuzz_5.json.gz", "wt") as out:
        out.write(text)
    code, err = run_cli(["data", "stats", str(folder), "--cache-dir", str(tmp_path / "c")])
    assert code in (0, 2) and "Traceback" not in err, err
