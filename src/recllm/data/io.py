"""Low-level file reading with errors that name the file, the line and the problem.

Parsing takes a fast typed path (pyarrow's multi-threaded CSV reader); only when that
fails does a slow line-by-line pass run to find the first bad line and say what is
wrong with it, so big files stay fast and bad files get a useful message.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recllm.errors import DataFormatError, DatasetNotFoundError

_CANDIDATE_SEPARATORS = ("::", "\t", ",", "|", ";")


def require_file(path: Path, what: str = "data file") -> Path:
    """Return ``path`` if it is a readable file, else raise a clear not-found error."""
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} not found: {path}")
    return path


def read_bytes(path: Path) -> bytes:
    """Whole file content, gunzipped when the name ends in ``.gz``."""
    require_file(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataFormatError(path, f"gzip stream is truncated or corrupt ({exc})") from exc
    if not raw.strip():
        raise DataFormatError(path, "file is empty")
    return raw


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a plain or gzipped text file, 1-based."""
    require_file(path)
    opener = gzip.open if path.suffix == ".gz" else open
    line_no = 0
    try:
        with opener(path, "rt", encoding=encoding, newline="") as handle:  # type: ignore[operator]
            for line_no, line in enumerate(handle, start=1):
                yield line_no, line
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            path, f"bytes that are not valid {encoding} ({exc.reason})", line_no + 1
        ) from exc
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(
            path, f"gzip stream is truncated or corrupt after line {line_no} ({exc})"
        ) from exc


def read_delimited(
    path: Path,
    sep: str,
    columns: Sequence[str],
    numeric: Sequence[str] = (),
    *,
    header: bool = False,
    encoding: str = "utf-8",
    types: dict[str, pa.DataType] | None = None,
) -> pd.DataFrame:
    """Read a delimited text file (optionally gzipped) into a DataFrame.

    Args:
        sep: field separator; may be several characters (MovieLens ``::``).
        columns: names of the columns; with ``header=True`` the file's header must
            contain them (extra columns are ignored).
        numeric: columns that must parse as numbers (ids, ratings, timestamps).
        types: explicit pyarrow types; numeric columns default to float64, others to
            string.
    """
    raw = read_bytes(path)
    if len(sep) > 1:
        # pyarrow takes one-character delimiters; the unit separator never occurs in text.
        raw = raw.replace(sep.encode(), b"\x1f")
    delimiter = "\x1f" if len(sep) > 1 else sep
    if encoding.lower().replace("-", "") not in ("utf8", "ascii"):
        raw = raw.decode(encoding).encode("utf-8")
    column_types = {c: pa.float64() for c in numeric}
    column_types.update({c: pa.string() for c in columns if c not in column_types})
    column_types.update(types or {})
    read_options = pacsv.ReadOptions(
        column_names=None if header else list(columns), autogenerate_column_names=False
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, quote_char='"', newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types=column_types,
        include_columns=list(columns),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError) as exc:
        raise _diagnose(path, raw, sep, delimiter, columns, numeric, header) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"bytes that are not valid UTF-8 ({exc.reason})") from exc
    return table.to_pandas()


def _diagnose(
    path: Path,
    raw: bytes,
    sep: str,
    delimiter: str,
    columns: Sequence[str],
    numeric: Sequence[str],
    header: bool,
) -> DataFormatError:
    """Find the first bad line after the fast parser failed; slow, runs only on errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return DataFormatError(path, f"bytes that are not valid UTF-8 ({exc.reason})", line)
    lines = text.splitlines()
    names = list(columns)
    start = 0
    if header:
        found = lines[0].split(delimiter) if lines else []
        found = [f.strip().strip('"') for f in found]
        missing = [c for c in columns if c not in found]
        if missing:
            hint = _separator_hint(lines[0], sep) if lines else ""
            return DataFormatError(
                path, f"header lacks column(s) {missing}; found {found}{hint}", 1
            )
        names = found
        start = 1
    positions = {c: names.index(c) for c in numeric if c in names}
    for offset, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        if '"' in line:
            # Quoted fields may hold separators or newlines; leave them to the parser.
            continue
        fields = line.split(delimiter)
        if len(fields) < len(names):
            return DataFormatError(
                path,
                f"expected {len(names)} fields separated by {sep!r}, found {len(fields)}"
                + _separator_hint(line, sep),
                offset,
            )
        for col, pos in positions.items():
            value = fields[pos].strip()
            if value == "":
                continue
            try:
                float(value)
            except ValueError:
                return DataFormatError(
                    path, f"column {col!r} must be numeric, found {value!r}", offset
                )
    return DataFormatError(path, f"cannot be parsed as {sep!r}-separated columns {names}")


def _separator_hint(line: str, expected: str) -> str:
    for candidate in _CANDIDATE_SEPARATORS:
        if candidate != expected and candidate in line:
            return f" (the line contains {candidate!r}: wrong separator?)"
    return ""
