"""Loading a trained run for evaluate / recommend / ask (issue 27): a shifted catalogue is
refused, damaged files and bad options are one-line errors, unfinished runs say so, and
ids a person types are trimmed."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from recipes.test_run_folder import sasrec_config
from recipes.test_train import run, toy_sasrec_run

from recllm.cli import main
from recllm.errors import RecLLMError
from recllm.recipes.inference import load_run, user_history


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_sasrec_run(tmp_path_factory.mktemp("inference"), epochs=2)


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run (and its data, whose path the config names)."""
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    config = json.loads((target / "config.json").read_text())
    config["output_dir"] = str(target)
    (target / "config.json").write_text(json.dumps(config))
    return target


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("recllm: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), lines[0]


def test_data_whose_item_ids_shifted_is_refused(tmp_path: Path) -> None:
    """One item leaves the data and another enters: the count stays 30, every code after
    it moves by one, and the run must not answer with neighbouring items."""
    config = sasrec_config(tmp_path, "shift", epochs=1)
    run(config)
    data = Path(config.data.dataset)
    rows = [line.split("\t") for line in (data / "u.data").read_text().splitlines()]
    used = sorted({int(r[1]) for r in rows})
    gone = str(used[1])  # every item after it moves down one code
    moved = "\n".join("\t".join([r[0], "31" if r[1] == gone else r[1], *r[2:]]) for r in rows)
    (data / "u.data").write_text(moved + "\n")
    with (data / "u.item").open("a", encoding="latin-1") as items:
        items.write("31|Movie 31 (1990)|01-Jan-1990||http://x|" + "|".join(["0"] * 19) + "\n")
    with pytest.raises(
        RecLLMError,
        match=rf"trained on another catalogue: the items \({len(used)} now, {len(used)} then",
    ):
        load_run(Path(config.output_dir), progress=False)
    with pytest.raises(RecLLMError, match="trained on another catalogue"):
        run(config, resume=True)  # the same config: toy_config would rewrite the data


def test_damaged_run_files_are_one_line_errors(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = copy_run(run_dir, tmp_path)
    weights = next((target / "best").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:50])
    code, _, err = cli(["evaluate", str(target), "--quiet"], capsys)
    assert_one_line_error(code, err, "best", "damaged or truncated")
    weights.write_bytes(b"\x00" * 8)
    assert_one_line_error(*cli(["evaluate", str(target), "--quiet"], capsys)[::2], "best")
    (target / "config.json").write_text('{"model": "sasrec", ')
    code, _, err = cli(["recommend", str(target), "--user", "1"], capsys)
    assert_one_line_error(code, err, "config.json", "JSON file is damaged")


def test_evaluate_says_when_a_run_did_not_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = sasrec_config(tmp_path, "partial", epochs=3)
    run(config, until_epoch=1)
    with caplog.at_level(logging.WARNING):
        load_run(Path(config.output_dir), progress=False)
    assert "did not finish (1 of 3 epochs done)" in caplog.text
    caplog.clear()
    run(sasrec_config(tmp_path, "partial", epochs=3), resume=True)
    with caplog.at_level(logging.WARNING):
        load_run(Path(config.output_dir), progress=False)
    assert "did not finish" not in caplog.text


def test_recommend_options(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["recommend", str(run_dir), "--user", "1", "--history", "1,2"], capsys)
    assert_one_line_error(code, err, "not both")
    code, out, _ = cli(["recommend", str(run_dir), "--history", " 1 , 2,3 ", "-k", "2"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2
    code, out, _ = cli(["recommend", str(run_dir), "--user", " 1 ", "-k", "2"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2
    code, _, err = cli(["recommend", str(run_dir), "--user", "nobody"], capsys)
    assert_one_line_error(code, err, "unknown user 'nobody'", "give --history")
    for k in ("0", "-3"):
        # refused before the run is loaded: the checkpoint need not even exist
        code, _, err = cli(["recommend", "no-such-run", "--user", "1", "-k", k], capsys)
        assert_one_line_error(code, err, "-k must be >= 1", f"got {k}")
        code, _, err = cli(["ask", "no-such-run", "some comedies", "--user", "1", "-k", k], capsys)
        assert_one_line_error(code, err, "-k must be >= 1", f"got {k}")


def test_hints_name_only_options_the_command_has(run_dir: Path) -> None:
    """``ask`` and ``explain`` have no --history: their unknown-user error must not
    suggest it (recommend's does, see above)."""
    loaded = load_run(run_dir, progress=False)
    with pytest.raises(RecLLMError) as info:
        user_history(loaded, "nobody")
    assert "--history" not in str(info.value) and "known ids look like" in str(info.value)
