"""The bundle's manifest: every file checksummed, and a damaged, foreign or too new bundle
refused with one line (by the loader and by the CLI) before any model is read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recllm.bundle.format import (
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    read_manifest,
    write_manifest,
)
from recllm.cli import main


def small_bundle(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / "sub" / "b.bin").write_bytes(b"\x00\x01")
    write_manifest(folder, {"dataset": "toy"})
    return folder


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    manifest = read_manifest(small_bundle(tmp_path / "b"))
    assert manifest["format_version"] == FORMAT_VERSION and manifest["dataset"] == "toy"
    assert set(manifest["files"]) == {"a.json", "sub/b.bin"}
    assert all(len(digest) == 64 for digest in manifest["files"].values())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "a.json").write_text('{"x": 1}'), "a.json does not match its checksum"),
        (lambda f: (f / "sub" / "b.bin").unlink(), "sub/b.bin is missing"),
        (lambda f: (f / MANIFEST).write_text("{not json"), "is not valid JSON"),
        (lambda f: (f / MANIFEST).unlink(), "not a RecLLM bundle"),
        (
            lambda f: (f / MANIFEST).write_text(json.dumps({"format": "other", "files": {}})),
            "not a RecLLM bundle",
        ),
        (
            lambda f: (f / MANIFEST).write_text(
                json.dumps({"format": "recllm-bundle", "format_version": 99, "files": {"a": "0"}})
            ),
            "format version 99",
        ),
    ],
)
def test_damaged_or_foreign_bundles_are_refused(tmp_path: Path, damage, message: str) -> None:
    folder = small_bundle(tmp_path / "b")
    damage(folder)
    with pytest.raises(BundleError, match=message):
        read_manifest(folder)


def test_serving_a_damaged_bundle_is_one_line_and_exit_2(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    weights = copy / "recommender" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated
    assert main(["serve", str(copy), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"recllm: error: bundle {copy} is damaged: recommender/adapter_model.safetensors "
        "does not match its checksum in manifest.json"
    ]
    assert main(["recommend", str(copy), "--user", "1"]) == 2
    assert "is damaged" in capsys.readouterr().err
