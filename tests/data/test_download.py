"""`recllm.data.download` against a local HTTP server: no internet needed, all fast."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recllm.data import download as dl
from recllm.data.registry import KNOWN
from recllm.errors import DatasetNotFoundError, RecLLMError


@dataclass
class FileServer:
    """What the test server serves, and the requests it saw as (path, Range header)."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    honour_range: bool = True

    def add(self, name: str, data: bytes) -> str:
        self.files[f"/{name}"] = data
        return f"{self.base}/{name}"


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            state.requests.append((self.path, wanted))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if wanted and state.honour_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


ML100K_FILES = {"u.data": b"1\t1\t5\t874965758\n2\t1\t3\t876893171\n", "u.item": b"1|Toy Story|\n"}


def serve_ml_zip(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, name: str, member: str
) -> bytes:
    data = make_zip({f"{member}/{k}": v for k, v in ML100K_FILES.items()})
    url = server.add(f"{name}.zip", data)
    md5 = hashlib.md5(data).hexdigest()
    remote = dl.RemoteFile(url, f"{name}.zip", md5=md5, extract=True, member=member)
    monkeypatch.setitem(dl.SOURCES, name, [remote])
    return data


def serve_gz(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, name: str, data: bytes, **checks: str
) -> dl.RemoteFile:
    filename = f"reviews_{name}_5.json.gz"
    remote = dl.RemoteFile(server.add(filename, data), filename, **checks)
    monkeypatch.setitem(dl.SOURCES, name, [remote])
    return remote


def reviews_gz(lines: int = 2000) -> bytes:
    text = "".join(
        f'{{"reviewerID": "u{i}", "asin": "i{i % 7}", "overall": 5}}\n' for i in range(lines)
    )
    return gzip.compress(text.encode(), mtime=0)


@pytest.mark.parametrize(("name", "member"), [("ml-100k", "ml-100k"), ("ml-10m", "ml-10M100K")])
def test_zip_is_verified_and_extracted_into_the_dataset_folder(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, member: str
) -> None:
    serve_ml_zip(server, monkeypatch, name, member)
    folder = dl.download(name, tmp_path, progress=True)  # the bar must not get in the way
    assert folder == tmp_path / name == tmp_path / KNOWN[name].folders[0]
    for filename, data in ML100K_FILES.items():
        assert (folder / filename).read_bytes() == data
    manifest = (folder / dl.CHECKSUMS).read_text()
    assert f"{hashlib.sha256(ML100K_FILES['u.data']).hexdigest()}  u.data\n" in manifest
    assert not (tmp_path / ".downloads").exists()  # staging cleaned up, zip deleted


@pytest.mark.parametrize("honour_range", [True, False])
def test_partial_download_is_resumed_with_a_range_request(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, honour_range: bool
) -> None:
    data = reviews_gz()
    remote = serve_gz(
        server, monkeypatch, "amazon-beauty", data, sha256=hashlib.sha256(data).hexdigest()
    )
    server.honour_range = honour_range
    part = tmp_path / ".downloads" / "amazon-beauty" / f"{remote.filename}.part"
    part.parent.mkdir(parents=True)
    half = len(data) // 2
    part.write_bytes(data[:half])
    folder = dl.download("amazon-beauty", tmp_path, progress=False)
    assert server.requests == [(f"/{remote.filename}", f"bytes={half}-")]
    assert (folder / remote.filename).read_bytes() == data
    assert not part.exists()


def test_part_longer_than_the_file_starts_over(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = reviews_gz()
    remote = serve_gz(server, monkeypatch, "amazon-beauty", data)
    part = tmp_path / ".downloads" / "amazon-beauty" / f"{remote.filename}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data + b"stale")  # the server answers 416 Range Not Satisfiable
    folder = dl.download("amazon-beauty", tmp_path, progress=False)
    assert [wanted for _, wanted in server.requests] == [f"bytes={len(data) + 5}-", None]
    assert (folder / remote.filename).read_bytes() == data


def test_checksum_mismatch_raises_and_leaves_no_file(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_gz(server, monkeypatch, "amazon-beauty", reviews_gz(), sha256="ab" * 32)
    with pytest.raises(RecLLMError, match=f"sha256 mismatch: expected {'ab' * 32}, got"):
        dl.download("amazon-beauty", tmp_path, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_gzip_without_checksum_is_decompressed_and_its_sha256_recorded(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = reviews_gz()
    serve_gz(server, monkeypatch, "amazon-beauty", data)
    folder = dl.download("amazon-beauty", tmp_path, progress=False)
    recorded = (folder / dl.CHECKSUMS).read_text()
    assert recorded == f"{hashlib.sha256(data).hexdigest()}  reviews_amazon-beauty_5.json.gz\n"


def test_truncated_gzip_without_checksum_is_refused(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = reviews_gz()
    serve_gz(server, monkeypatch, "amazon-beauty", data[: len(data) - 20])
    with pytest.raises(RecLLMError, match="gzip stream is truncated"):
        dl.download("amazon-beauty", tmp_path, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_md5_from_companion_file(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = make_zip({"ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n"})
    url = server.add("ml-latest-small.zip", data)
    server.add(
        "ml-latest-small.zip.md5", f"MD5 (x.zip) = {hashlib.md5(data).hexdigest()}\n".encode()
    )
    remote = dl.RemoteFile(
        url, "ml-latest-small.zip", md5_url=f"{url}.md5", extract=True, member="ml-latest-small"
    )
    monkeypatch.setitem(dl.SOURCES, "ml-latest-small", [remote])
    folder = dl.download("ml-latest-small", tmp_path, progress=False)
    assert (folder / "ratings.csv").is_file()
    server.files["/ml-latest-small.zip.md5"] = b"MD5 (x.zip) = " + b"0" * 32
    with pytest.raises(RecLLMError, match="md5 mismatch"):
        dl.download("ml-latest-small", tmp_path, force=True, progress=False)


@pytest.mark.parametrize("evil", ["../evil", "/tmp/evil", "ml-100k/../../evil"])
def test_zip_member_escaping_the_folder_is_refused(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, evil: str
) -> None:
    data = make_zip({"ml-100k/u.data": b"1\t1\t5\t1\n", evil: b"gotcha"})
    remote = dl.RemoteFile(
        server.add("ml-100k.zip", data),
        "ml-100k.zip",
        md5=hashlib.md5(data).hexdigest(),
        extract=True,
        member="ml-100k",
    )
    monkeypatch.setitem(dl.SOURCES, "ml-100k", [remote])
    data_dir = tmp_path / "data"
    with pytest.raises(RecLLMError, match="refusing to extract"):
        dl.download("ml-100k", data_dir, progress=False)
    assert not list(tmp_path.rglob("evil"))
    assert not (data_dir / "ml-100k" / "u.data").exists()


def test_offline_fails_fast_and_says_what_to_place_where(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/reviews_Beauty_5.json.gz"
    monkeypatch.setitem(
        dl.SOURCES, "amazon-beauty", [dl.RemoteFile(url, "reviews_Beauty_5.json.gz")]
    )
    started = time.monotonic()
    with pytest.raises(RecLLMError) as info:
        dl.download("amazon-beauty", tmp_path, progress=False, timeout=2.0)
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert url in message
    assert str(tmp_path / "amazon-beauty" / "reviews_Beauty_5.json.gz") in message
    assert "--data-dir" in message and "RECLLM_DATA_DIR" in message
    assert list(tmp_path.iterdir()) == []  # no empty staging folders left behind


def test_describe_manual_install_names_files_and_folders(tmp_path: Path) -> None:
    text = dl.describe_manual_install("ml-10m", tmp_path)
    assert "https://files.grouplens.org/datasets/movielens/ml-10m.zip" in text
    assert "ce571fd55effeba0271552578f2648bd" in text
    assert f"rename the folder ml-10M100K it creates to {tmp_path / 'ml-10m'}" in text
    beauty = dl.describe_manual_install("amazon-beauty", tmp_path)
    for filename in ("reviews_Beauty_5.json.gz", "meta_Beauty.json.gz"):
        assert str(tmp_path / "amazon-beauty" / filename) in beauty


def test_unknown_name_lists_downloadable_datasets(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ml-100k.*amazon-beauty"):
        dl.download("ml-5m", tmp_path, progress=False)


def test_synthetic_dataset_is_not_downloadable(tmp_path: Path) -> None:
    with pytest.raises(RecLLMError, match="recllm data synth"):
        dl.download("synthetic-ml20m", tmp_path, progress=False)


def test_present_and_verified_files_are_not_downloaded_again(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_ml_zip(server, monkeypatch, "ml-100k", "ml-100k")
    dl.download("ml-100k", tmp_path, progress=False)
    data = reviews_gz()
    serve_gz(
        server,
        monkeypatch,
        "amazon-musical-instruments",
        data,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    placed = (
        tmp_path
        / "amazon-musical-instruments-5core"
        / "reviews_amazon-musical-instruments_5.json.gz"
    )
    placed.parent.mkdir()
    placed.write_bytes(data)  # installed by hand
    server.requests.clear()
    dl.download("ml-100k", tmp_path, progress=False)
    dl.download("amazon-musical-instruments", tmp_path, progress=False)
    assert server.requests == []
    (tmp_path / "ml-100k" / "u.data").write_bytes(b"tampered")  # fails the recorded sha256
    dl.download("ml-100k", tmp_path, progress=False)
    assert (tmp_path / "ml-100k" / "u.data").read_bytes() == ML100K_FILES["u.data"]
    dl.download("ml-100k", tmp_path, force=True, progress=False)
    assert [path for path, _ in server.requests] == ["/ml-100k.zip", "/ml-100k.zip"]


def test_sources_are_known_datasets_with_well_formed_checksums() -> None:
    assert set(dl.SOURCES) == set(KNOWN) - {"synthetic-ml20m"}
    for remotes in dl.SOURCES.values():
        for remote in remotes:
            assert remote.url.endswith(remote.filename)
            if remote.md5:
                assert len(remote.md5) == 32 and int(remote.md5, 16) >= 0
            if remote.sha256:
                assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0
    assert dl.SOURCES["ml-latest"][0].md5_url == dl.SOURCES["ml-latest"][0].url + ".md5"
