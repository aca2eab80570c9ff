"""A training run's folder: one writer at a time, and an earlier run lost only once the
new one has weights.

* An exclusive advisory lock (``fcntl.flock`` on ``.lock`` inside the folder) is held from
  the start of a run to its end; a second writer is refused with the holder's pid. The
  kernel drops the lock when the process dies, so a killed run leaves no stale lock.
* Every check on the folder happens before any data or model is loaded.
* ``--overwrite`` moves the earlier run into ``.replaced/`` inside the folder and deletes
  it only when the new run first saves its best weights; a new run that fails before
  that is removed and the earlier one put back (also on the next start, after a
  ``kill -9``).
* A run that fails before its first checkpoint leaves no folder behind (only what it
  wrote is removed from a folder that existed before); one with checkpoints stays
  resumable. Interrupted checkpoint writes (``.tmp-*``) are cleaned on the next start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from recllm.errors import ConfigError, RecLLMError

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
CHECKPOINTS = "checkpoints"
BEST = "best"
LOCK = ".lock"
ASIDE = ".replaced"


def lock_holder(folder: Path) -> int | None:
    """The pid of the process that holds ``folder``'s lock, or None when no one does."""
    path = Path(folder) / LOCK
    if not path.is_file():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def has_run(folder: Path) -> bool:
    """Whether ``folder`` holds (part of) a training run."""
    return (folder / CONFIG_NAME).is_file() or (folder / CHECKPOINTS).is_dir()


def _move_entries(source: Path, target: Path, keep: tuple[str, ...] = ()) -> None:
    """Move everything in ``source`` (but ``keep``) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(source):
        if name not in keep:
            os.replace(source / name, target / name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class RunFolder:
    """The output folder of one training run, held from :meth:`open` to :meth:`close`."""

    def __init__(self, folder: Path, resume: bool = False, overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.resume = resume
        self.overwrite = overwrite
        self.aside = self.folder / ASIDE
        self._lock: int | None = None
        self._existed_before: set[str] | None = None  # entries of a folder we did not create

    # -- opening -----------------------------------------------------------------------
    def open(self) -> None:
        """Check the folder, take the lock, tidy what an interrupted run left, and move an
        earlier run aside when overwriting. Cheap: nothing is loaded yet."""
        self._check_writable()
        if self.folder.is_dir():
            self._existed_before = set(os.listdir(self.folder))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._acquire()
        except OSError as exc:
            raise RecLLMError(
                f"cannot create the run folder {self.folder}: {exc.strerror}"
            ) from exc
        try:
            self._tidy()
            if has_run(self.folder) and not self.resume:
                if not self.overwrite:
                    raise ConfigError(
                        f"{self.folder} already holds a run; use --resume to continue it, "
                        "--overwrite to replace it, or another output_dir"
                    )
                _move_entries(self.folder, self.aside, keep=(LOCK, ASIDE))
                log.info(
                    "moved the earlier run in %s aside (%s) until this run saves its best weights",
                    self.folder,
                    ASIDE,
                )
        except BaseException:
            self.abort()
            self.close()
            raise

    def _check_writable(self) -> None:
        """An output_dir that is a file, lies under a file, or cannot be written is a
        config error, said before anything else happens."""
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"output_dir {self.folder} is a file, not a folder")
        existing = self.folder.resolve()
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"output_dir {self.folder} lies under {existing}, which is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(
                f"output_dir {self.folder} cannot be written ({existing} is read-only)"
            )

    def _acquire(self) -> None:
        path = self.folder / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _pid_in(path)
            raise RecLLMError(
                f"{self.folder} is in use by another run (pid {pid or 'unknown'}); wait for it "
                "to finish, stop it, or choose another output_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def _tidy(self) -> None:
        """Undo what a killed run left: half-written checkpoints, and an earlier run moved
        aside by an ``--overwrite`` run that died before it had weights."""
        for tmp in [*self.folder.glob(".tmp-*"), *self.folder.glob(f"{CHECKPOINTS}/.tmp-*")]:
            log.info("removing %s, left by an interrupted write", tmp)
            _remove(tmp)
        if not self.aside.is_dir():
            return
        if (self.folder / BEST).is_dir():
            _remove(self.aside)  # the new run had got its weights
        elif not self.resume:
            log.warning(
                "an --overwrite run of %s stopped before it saved weights: the earlier run "
                "is put back",
                self.folder,
            )
            self._put_back()

    def _put_back(self) -> None:
        """Replace whatever the folder holds by the earlier run kept aside."""
        for name in set(os.listdir(self.folder)) - {LOCK, ASIDE}:
            _remove(self.folder / name)
        _move_entries(self.aside, self.folder)
        self.aside.rmdir()

    # -- during and after the run --------------------------------------------------------
    def commit(self) -> None:
        """The new run has its best weights: the earlier run it replaces can go."""
        if self.aside.is_dir():
            _remove(self.aside)
            log.info("removed the earlier run that %s replaces", self.folder)

    def abort(self) -> None:
        """The run failed. Without a checkpoint nothing is resumable: remove what it wrote
        (and put back an earlier run it was replacing); with one, keep it for --resume."""
        if not self.folder.is_dir() or any((self.folder / CHECKPOINTS).glob("epoch-*")):
            return
        if self.aside.is_dir():
            self._put_back()
        elif self._existed_before is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            for name in set(os.listdir(self.folder)) - self._existed_before:
                _remove(self.folder / name)  # the lock file too, when this run made it

    def close(self) -> None:
        """Release the lock (the lock file stays: removing it would race a new writer)."""
        if getattr(self, "_lock", None) is not None:  # also from __del__ of a half-built one
            assert self._lock is not None
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def __del__(self) -> None:
        self.close()
