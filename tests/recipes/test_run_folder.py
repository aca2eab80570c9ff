"""Runs that cannot be lost (issue 27): one writer per run folder, checks before loading,
--overwrite that keeps the earlier run until the new one has weights, resume past a
damaged checkpoint, and one-line errors for a NaN loss and a full disk."""

from __future__ import annotations

import errno
import logging
import math
import os
from pathlib import Path

import pytest
import torch
from recipes.test_train import run, toy_config

from recllm.errors import ConfigError, RecLLMError
from recllm.recipes import checkpoint
from recllm.recipes.run_folder import ASIDE, LOCK, RunFolder, lock_holder
from recllm.recipes.train import TrainConfig, TrainRecipe


def sasrec_config(tmp_path: Path, out: str, epochs: int = 2, **trainer) -> TrainConfig:
    """The toy config on SASRec: no language model, so each run takes a second."""
    config = toy_config(tmp_path, out, epochs=epochs, **trainer)
    config.model = "sasrec"
    config.sasrec.d_model = 16
    config.sasrec.max_len = 8
    return config


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder and its bytes (the lock file aside)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != LOCK
    }


def test_a_second_writer_is_refused_naming_the_holder_pid(tmp_path: Path) -> None:
    first = RunFolder(tmp_path / "run")
    first.open()
    assert lock_holder(tmp_path / "run") == os.getpid()
    with pytest.raises(RecLLMError, match=r"in use by another run \(pid \d+\)"):
        RunFolder(tmp_path / "run", overwrite=True).open()
    with pytest.raises(RecLLMError, match="in use by another run"):
        TrainRecipe(sasrec_config(tmp_path, "run"), overwrite=True).setup()
    first.close()
    assert lock_holder(tmp_path / "run") is None and (tmp_path / "run" / LOCK).is_file()
    second = RunFolder(tmp_path / "run")
    second.open()  # free again
    second.close()


def test_a_used_folder_is_refused_before_any_data_is_loaded(tmp_path: Path) -> None:
    config = sasrec_config(tmp_path, "used")
    config.data.dataset = str(tmp_path / "no-such-dataset")  # loading it would fail
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run"):
        TrainRecipe(config).setup()
    assert lock_holder(tmp_path / "used") is None  # released on the way out


def test_an_output_dir_that_is_a_file_or_read_only_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        RunFolder(tmp_path / "file").open()
    with pytest.raises(ConfigError, match="which is a file"):
        RunFolder(tmp_path / "file" / "run").open()
    monkeypatch.setattr("os.access", lambda *_: False)  # tests run as root: pretend
    with pytest.raises(ConfigError, match="cannot be written"):
        RunFolder(tmp_path / "ro" / "run").open()


def test_a_failed_fresh_run_leaves_no_folder_and_spares_what_was_there(tmp_path: Path) -> None:
    config = sasrec_config(tmp_path, "fresh")
    config.data.dataset = str(tmp_path / "no-such-dataset")
    with pytest.raises(RecLLMError):
        TrainRecipe(config).setup()
    assert not (tmp_path / "fresh").exists()
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "notes.txt").write_text("mine")
    with pytest.raises(RecLLMError):
        TrainRecipe(config).setup()
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["notes.txt"]


def nan_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """Make the training loss NaN from batch ``steps + 1`` on."""
    original = TrainRecipe._batch_loss
    count = {"n": 0}

    def loss(self: TrainRecipe, batch: object) -> torch.Tensor:
        count["n"] += 1
        value = original(self, batch)
        return value * math.nan if count["n"] > steps else value

    monkeypatch.setattr(TrainRecipe, "_batch_loss", loss)


def test_a_nan_loss_stops_at_once_naming_epoch_and_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nan_after(monkeypatch, 2)
    with pytest.raises(RecLLMError, match=r"loss became nan at epoch 1, step 3 \(batch 3 of"):
        run(sasrec_config(tmp_path, "nan"))
    assert not (tmp_path / "nan").exists()  # nothing resumable: nothing left behind


def test_overwrite_keeps_the_earlier_run_until_the_new_one_has_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(sasrec_config(tmp_path, "kept", epochs=1))
    before = files_of(tmp_path / "kept")
    with monkeypatch.context() as patch:
        nan_after(patch, 1)
        with pytest.raises(RecLLMError, match="loss became nan"):
            recipe = TrainRecipe(sasrec_config(tmp_path, "kept", epochs=1), overwrite=True)
            recipe.setup()
            recipe.train()
    assert files_of(tmp_path / "kept") == before  # put back whole
    assert not (tmp_path / "kept" / ASIDE).exists()

    replaced = TrainRecipe(sasrec_config(tmp_path, "kept", epochs=2, lr=0.02), overwrite=True)
    replaced.setup()
    assert (tmp_path / "kept" / ASIDE / "best").is_dir()  # aside until the new run has weights
    replaced.train()
    replaced.cleanup()
    assert not (tmp_path / "kept" / ASIDE).exists()
    assert (tmp_path / "kept" / "checkpoints" / "epoch-2").is_dir()


def test_an_overwrite_killed_before_weights_is_undone_on_the_next_start(tmp_path: Path) -> None:
    """``kill -9`` leaves the earlier run aside and a new folder without best/."""
    run(sasrec_config(tmp_path, "killed", epochs=1))
    killed = tmp_path / "killed"
    before = files_of(killed)
    (killed / ASIDE).mkdir()
    for entry in killed.iterdir():
        if entry.name not in (LOCK, ASIDE):
            entry.rename(killed / ASIDE / entry.name)
    (killed / "checkpoints" / ".tmp-abc").mkdir(parents=True)
    (killed / "config.json").write_text("{}")
    folder = RunFolder(killed, resume=True)
    folder.open()  # resuming keeps both: the new run may still get its weights
    assert (killed / ASIDE / "best").is_dir()
    assert not (tmp_path / "killed" / "checkpoints" / ".tmp-abc").exists()
    folder.close()
    with pytest.raises(ConfigError, match="already holds a run"):
        RunFolder(tmp_path / "killed").open()  # the earlier run, put back
    assert files_of(tmp_path / "killed") == before


def test_resume_falls_back_to_the_newest_intact_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    straight = run(sasrec_config(tmp_path, "straight", epochs=3))
    run(sasrec_config(tmp_path, "damaged", epochs=3), until_epoch=2)
    newest = tmp_path / "damaged" / "checkpoints" / "epoch-2"
    weights = newest / checkpoint.TRAINABLE_NAME
    weights.write_bytes(weights.read_bytes()[:100])  # truncated by a crash
    (tmp_path / "damaged" / "checkpoints" / ".tmp-x1").mkdir()
    with caplog.at_level(logging.WARNING):
        resumed = run(sasrec_config(tmp_path, "damaged", epochs=3), resume=True)
    assert "checkpoint epoch-2 cannot be used" in caplog.text
    assert "resuming from epoch-1 instead (passed over epoch-2)" in caplog.text
    assert [h["epoch"] for h in resumed.state["history"]] == [1, 2, 3]
    assert not list((tmp_path / "damaged" / "checkpoints").glob(".tmp-*"))
    for name, value in straight.model.named_parameters():  # epochs 2-3 redone exactly
        assert torch.equal(value, dict(resumed.model.named_parameters())[name]), name


def test_resume_with_no_intact_checkpoint_is_one_error(tmp_path: Path) -> None:
    run(sasrec_config(tmp_path, "broken", epochs=2, keep_checkpoints=0), until_epoch=2)
    for folder in (tmp_path / "broken" / "checkpoints").iterdir():
        (folder / checkpoint.OPTIMIZER_NAME).unlink()
    with pytest.raises(RecLLMError, match=r"no checkpoint in .* can be loaded \(epoch-2, epoch-1"):
        run(sasrec_config(tmp_path, "broken", epochs=2, keep_checkpoints=0), resume=True)
    assert (tmp_path / "broken" / "checkpoints" / "epoch-1").is_dir()  # kept for inspection


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(sasrec_config(tmp_path, "full", epochs=3), until_epoch=1)

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", no_space)
    with pytest.raises(
        RecLLMError,
        match="could not write the checkpoint of epoch 2: No space left on device; "
        "the checkpoint of epoch 1 is intact",
    ):
        run(sasrec_config(tmp_path, "full", epochs=3), resume=True)
    monkeypatch.undo()
    folders = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert folders == ["epoch-1"]  # no half-written .tmp-* folder either
    again = run(sasrec_config(tmp_path, "full", epochs=3), resume=True)
    assert again.state["epoch"] == 3
