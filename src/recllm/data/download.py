"""Download the official MovieLens (GroupLens) and Amazon 2014 (McAuley) files, verified.

MovieLens zips are checked against their md5 (``ml-latest*`` change over time, so theirs
comes from GroupLens's companion ``<zip>.md5``), Amazon Musical Instruments against the
sha256 of the original file. The Amazon Beauty files have no official checksum: they are
accepted when their gzip stream decompresses completely. Every installed file's sha256 is
recorded in ``CHECKSUMS.sha256`` (``sha256sum -c`` format) in the dataset folder, so later
runs detect changes. Downloads resume from ``<data_dir>/.downloads/<name>/<file>.part``
with an HTTP ``Range`` request; offline, the error says which files to place where.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from recllm.data.registry import KNOWN
from recllm.errors import DatasetNotFoundError, RecLLMError
from recllm.progress import progress_bar

log = logging.getLogger(__name__)

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
SNAP = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
CHECKSUMS = "CHECKSUMS.sha256"  # sha256sum format, one line per installed file
USER_AGENT = "recllm-data-download (python urllib)"
_CHUNK = 1 << 20
# What a dead network looks like from urllib: DNS failure and refused connections arrive
# wrapped in URLError, timeouts and resets while reading arrive bare.
_NET_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)


@dataclass(frozen=True)
class RemoteFile:
    """One file of an official release, and how to check and install it."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    md5_url: str | None = None  # published companion checksum, for releases that change
    extract: bool = False  # a zip: unpack it and move ``member`` into the dataset folder
    member: str | None = None  # the folder inside the zip that becomes the dataset folder

    def __post_init__(self) -> None:
        if self.extract and not self.member:
            raise ValueError(f"{self.filename}: a zip source must name the member folder")


def _movielens(name: str, md5: str | None = None, member: str | None = None) -> list[RemoteFile]:
    url = f"{GROUPLENS}{name}.zip"
    companion = None if md5 else f"{url}.md5"
    return [RemoteFile(url, f"{name}.zip", md5, None, companion, True, member or name)]


def _amazon(filename: str, sha256: str | None = None) -> RemoteFile:
    return RemoteFile(SNAP + filename, filename, sha256=sha256)


SOURCES: dict[str, list[RemoteFile]] = {
    "ml-100k": _movielens("ml-100k", "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": _movielens("ml-1m", "c4d9eecfca2ab87c1945afe126590906"),
    "ml-10m": _movielens("ml-10m", "ce571fd55effeba0271552578f2648bd", "ml-10M100K"),
    "ml-20m": _movielens("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3"),
    "ml-25m": _movielens("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-latest": _movielens("ml-latest"),
    "ml-latest-small": _movielens("ml-latest-small"),
    "amazon-musical-instruments": [
        _amazon(
            "reviews_Musical_Instruments_5.json.gz",
            "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
        )
    ],
    "amazon-beauty": [_amazon("reviews_Beauty_5.json.gz"), _amazon("meta_Beauty.json.gz")],
}


class _Unreachable(Exception):
    """A network failure, turned into a user-facing error by :func:`download`."""

    def __init__(self, url: str, reason: str | BaseException) -> None:
        if isinstance(reason, BaseException):
            reason = str(getattr(reason, "reason", reason)) or type(reason).__name__
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


def download(
    name: str, data_dir: Path, *, force: bool = False, progress: bool = True, timeout: float = 15.0
) -> Path:
    """Fetch, verify and install dataset ``name``; return its folder under ``data_dir``.

    Files already present and verified are skipped unless ``force``. ``timeout`` bounds
    each connection attempt and read, so being offline fails in seconds, not minutes.
    """
    remotes = _sources_of(name)
    data_dir = Path(data_dir)
    folder = data_dir / KNOWN[name].folders[0]
    staging = data_dir / ".downloads" / name
    try:
        for remote in remotes:
            if not force and _installed(folder, remote):
                log.info("%s: %s is already present and verified", name, remote.filename)
                continue
            _install(remote, folder, staging, progress, timeout)
    except _Unreachable as exc:
        raise RecLLMError(
            f"could not download {exc.url} ({exc.reason}). Partial downloads are resumed "
            f"when you run `recllm data download {name}` again. To install {name} by "
            f"hand instead:\n{describe_manual_install(name, data_dir)}"
        ) from exc
    finally:
        for empty in (staging, staging.parent):  # kept only while a .part waits to resume
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    return folder


def describe_manual_install(name: str, data_dir: Path) -> str:
    """Which files to download and where to put them, for machines without internet."""
    remotes = _sources_of(name)
    data_dir = Path(data_dir)
    folder = data_dir / KNOWN[name].folders[0]
    lines = [f"{name} ({KNOWN[name].description}):"]
    for r in remotes:
        if r.md5 or r.sha256:
            check = f" (md5 {r.md5})" if r.md5 else f" (sha256 {r.sha256})"
        else:
            check = f" (its md5 is published in {r.md5_url})" if r.md5_url else ""
        if not r.extract:
            step = f"save it as {folder / r.filename}"
        elif r.member == folder.name:
            step = f"unzip it in {data_dir}, which creates the folder {folder}"
        else:
            step = f"unzip it in {data_dir} and rename the folder {r.member} it creates to {folder}"
        lines.append(f"  - download {r.url}{check} and {step}")
    lines.append(
        f"The data directory is {data_dir}; choose another with --data-dir or the "
        "RECLLM_DATA_DIR environment variable."
    )
    return "\n".join(lines)


def _sources_of(name: str) -> list[RemoteFile]:
    if name in KNOWN and name not in SOURCES and name.startswith("synthetic"):
        raise RecLLMError(
            f"{name!r} is synthetic data and cannot be downloaded: generate it with "
            "`recllm data synth`."
        )
    if name not in SOURCES:
        raise DatasetNotFoundError(
            f"no download known for dataset {name!r}; downloadable datasets: {', '.join(SOURCES)}"
        )
    return SOURCES[name]


def _installed(folder: Path, remote: RemoteFile) -> bool:
    """Whether ``remote`` is already in place, re-checking the files it left there."""
    manifest = _read_manifest(folder)
    if remote.extract:
        if not folder.is_dir() or not any(folder.iterdir()):
            return False
        if not manifest:
            log.warning("%s holds files installed by hand; kept (--force replaces them)", folder)
            return True
        return all(
            (folder / rel).is_file() and _digests(folder / rel)[0] == digest
            for rel, digest in manifest.items()
        )
    path = folder / remote.filename
    if not path.is_file():
        return False
    sha256, md5 = _digests(path)
    if remote.md5 or remote.sha256:
        return md5 == remote.md5 if remote.md5 else sha256 == remote.sha256
    if remote.filename in manifest:
        return sha256 == manifest[remote.filename]
    if not _gzip_complete(path):
        return False
    _update_manifest(folder, {remote.filename: sha256})  # placed by hand: record it now
    return True


def _install(
    remote: RemoteFile, folder: Path, staging: Path, progress: bool, timeout: float
) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / remote.filename
    md5 = remote.md5 or (_published_md5(remote.md5_url, timeout) if remote.md5_url else None)
    target.unlink(missing_ok=True)  # never trust a complete-looking leftover; .part resumes
    _fetch(remote.url, target, progress, timeout)
    sha256 = _verify(target, remote, md5)
    folder.mkdir(parents=True, exist_ok=True)
    if remote.extract:
        assert remote.member is not None  # checked in RemoteFile.__post_init__
        moved = _extract(target, remote.member, folder)
        target.unlink()
        _update_manifest(folder, {rel: _digests(folder / rel)[0] for rel in moved})
    else:
        os.replace(target, folder / remote.filename)
        _update_manifest(folder, {remote.filename: sha256})


def _fetch(url: str, dest: Path, progress: bool, timeout: float) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming what is already there."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # the .part does not fit the server's file: restart
            part.unlink()
            return _fetch(url, dest, progress, timeout)
        raise _Unreachable(url, f"HTTP {exc.code} {exc.reason}") from exc
    except _NET_ERRORS as exc:
        raise _Unreachable(url, exc) from exc
    with response:
        content_range = response.headers.get("Content-Range", "")
        if not (response.status == 206 and content_range.startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range header and sends the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        bar = progress_bar(
            total=total,
            initial=offset,
            desc=dest.name,
            enabled=progress,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
        )
        with part.open("ab" if offset else "wb") as out, bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except _NET_ERRORS as exc:
                    raise _Unreachable(url, exc) from exc
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Unreachable(url, f"connection closed after {size} of {total} bytes")
    os.replace(part, dest)
    return None


def _published_md5(url: str, timeout: float) -> str:
    """The md5 in a GroupLens companion file (``MD5 (ml-latest.zip) = <hex>``)."""
    try:
        with urlopen(Request(url, headers={"User-Agent": USER_AGENT}), timeout=timeout) as r:
            text = r.read(4096).decode("ascii", "replace")
    except _NET_ERRORS as exc:
        raise _Unreachable(url, exc) from exc
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if match is None:
        raise RecLLMError(f"{url} holds no md5 checksum (it starts with {text[:80]!r})")
    return match.group(0).lower()


def _digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file in one pass: the large zips are read once."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _verify(path: Path, remote: RemoteFile, md5: str | None) -> str:
    """Check a fresh download; delete it and raise if it is not the official file."""
    sha256, got_md5 = _digests(path)
    for kind, expected, got in (("md5", md5, got_md5), ("sha256", remote.sha256, sha256)):
        if expected and expected.lower() != got:
            path.unlink()
            raise RecLLMError(
                f"{remote.url}: {kind} mismatch: expected {expected.lower()}, got {got}. "
                "The file was deleted; run the download again, and if it fails again the "
                "server's copy differs from the one this checksum was taken from."
            )
    if not (md5 or remote.sha256) and path.name.endswith(".gz") and not _gzip_complete(path):
        path.unlink()
        raise RecLLMError(
            f"{remote.url}: the gzip stream is truncated or corrupt. The file was deleted; "
            "run the download again."
        )
    return sha256


def _gzip_complete(path: Path) -> bool:
    """Whether the whole gzip stream decompresses: the check for files with no checksum."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_CHUNK):
                pass
    except (EOFError, OSError, zlib.error):
        return False
    return True


def _extract(archive: Path, member: str, folder: Path) -> list[str]:
    """Unpack ``member/`` of a zip into ``folder``; returns the files moved there."""
    unpacked = archive.with_name(archive.name + ".extract")
    shutil.rmtree(unpacked, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            unsafe = [name for name in zf.namelist() if _escapes(name)]
            if not unsafe:
                zf.extractall(unpacked)
    except zipfile.BadZipFile as exc:
        archive.unlink()
        raise RecLLMError(f"{archive}: not a valid zip file ({exc}); it was deleted") from exc
    if unsafe:
        archive.unlink()
        raise RecLLMError(
            f"{archive}: refusing to extract {unsafe[:3]}: members with an absolute path or "
            "'..' would land outside the target folder. The archive was deleted: it is not "
            "the official file."
        )
    root = unpacked / member
    if not root.is_dir():
        found = sorted(p.name for p in unpacked.iterdir())[:10]
        shutil.rmtree(unpacked)
        raise RecLLMError(f"{archive} has no folder {member}/ (it holds {found})")
    moved = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(root)
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, folder / rel)  # overwrite dataset files, keep any others
            moved.append(rel.as_posix())
    shutil.rmtree(unpacked)
    return moved


def _escapes(member: str) -> bool:
    """Whether a zip member name points outside the folder it is extracted into."""
    posix = PurePosixPath(member.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or bool(PureWindowsPath(member).drive)


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return {rel: digest.lower() for digest, _, rel in (x.partition("  ") for x in lines) if rel}


def _update_manifest(folder: Path, entries: dict[str, str]) -> None:
    merged = _read_manifest(folder) | entries
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(merged.items()))
    (folder / CHECKSUMS).write_text(text, encoding="utf-8")
