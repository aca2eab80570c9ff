"""Low-level file reading with errors that name the file, the line and the problem.

Parsing takes a fast typed path (pyarrow's multi-threaded CSV reader); only when that
fails does a slow line-by-line pass run to find the first bad line and say what is
wrong with it, so big files stay fast and bad files get a useful message.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recllm.errors import DataFormatError, DatasetNotFoundError

_CANDIDATE_SEPARATORS = ("::", "\t", ",", "|", ";")
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


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
        except _GZIP_ERRORS as exc:
            raise DataFormatError(path, f"gzip stream is truncated or corrupt ({exc})") from exc
    if not raw.strip():
        raise DataFormatError(path, "file is empty")
    return raw


def read_first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first line of a plain or gzipped text file, without its line break."""
    require_file(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            first = handle.readline()
    except _GZIP_ERRORS as exc:
        raise DataFormatError(path, f"gzip stream is truncated or corrupt ({exc})") from exc
    if not first.strip():
        raise DataFormatError(path, "file is empty" if not first else "first line is empty", 1)
    return first.decode(encoding, errors="replace").rstrip("\r\n")


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a plain or gzipped text file, 1-based.

    Lines are decoded one at a time, so an encoding error names the exact line (a text
    stream decodes blocks of many lines ahead of the one being read).
    """
    require_file(path)
    opener = gzip.open if path.suffix == ".gz" else open
    line_no = 0
    try:
        with opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    yield line_no, raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    raise DataFormatError(
                        path,
                        f"bytes that are not valid {encoding} at byte {exc.start} of the line"
                        f" ({exc.reason}: {raw[exc.start : exc.start + 4]!r})",
                        line_no,
                    ) from exc
    except _GZIP_ERRORS as exc:
        raise DataFormatError(
            path,
            f"gzip stream is truncated or corrupt after line {line_no} ({exc})",
            line_no + 1,
        ) from exc


def unescape_html(text: str) -> str:
    """Undo HTML escaping, also when it was applied twice (``&amp;#39;`` -> ``'``)."""
    for _ in range(3):
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return text


def read_delimited(
    path: Path,
    sep: str,
    columns: Sequence[str],
    numeric: Sequence[str] = (),
    *,
    header: bool = False,
    encoding: str = "utf-8",
    types: dict[str, pa.DataType] | None = None,
    required: Sequence[str] = (),
    quoted: bool = True,
) -> pd.DataFrame:
    """Read a delimited text file (optionally gzipped) into a DataFrame.

    Args:
        sep: field separator; may be several characters (MovieLens ``::``).
        columns: names of the columns; with ``header=True`` the file's header must
            contain them (extra columns are ignored), without a header the file must
            have exactly these columns.
        numeric: columns that must parse as numbers (ids, ratings, timestamps).
        types: explicit pyarrow types; numeric columns default to float64, others to
            string.
        required: columns that may not be empty on any line (ids).
        quoted: whether ``"`` quotes fields (CSV); MovieLens ``::`` and ``|`` files have
            no quoting, and a title such as ``"Great Performances" Cats`` keeps its quotes.
    """
    raw = read_bytes(path)
    if encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "ascii"):
        try:
            raw = raw.decode(encoding).encode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataFormatError(
                path, f"bytes that are not valid {encoding} ({exc.reason})", line
            ) from exc
    if len(sep) > 1:
        # pyarrow takes one-character delimiters; the unit separator never occurs in text.
        raw = raw.replace(sep.encode(), b"\x1f")
    delimiter = "\x1f" if len(sep) > 1 else sep
    column_types = {c: pa.float64() for c in numeric}
    column_types.update({c: pa.string() for c in columns if c not in column_types})
    column_types.update(types or {})
    read_options = pacsv.ReadOptions(
        column_names=None if header else list(columns), autogenerate_column_names=False
    )
    parse_options = pacsv.ParseOptions(
        delimiter=delimiter, quote_char='"' if quoted else False, newlines_in_values=quoted
    )
    convert_options = pacsv.ConvertOptions(
        column_types=column_types,
        include_columns=list(columns),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    scan = _Scan(path, raw, sep, delimiter, columns, numeric, required, header, quoted)
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError) as exc:
        raise scan.diagnose(f"cannot be parsed ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise scan.diagnose(f"bytes that are not valid UTF-8 ({exc.reason})") from exc
    frame = table.to_pandas()
    if len(frame) == 0:
        raise DataFormatError(path, "holds no data rows" + (" below its header" if header else ""))
    for col in required:
        values = frame[col]
        empty = values.isna() if col in numeric else values.isna() | (values.str.strip() == "")
        if empty.any():
            raise scan.diagnose(f"column {col!r} is empty in {int(empty.sum())} row(s)")
    return frame


class _Scan:
    """Slow line-by-line check that finds the first bad line; runs only on errors."""

    def __init__(
        self,
        path: Path,
        raw: bytes,
        sep: str,
        delimiter: str,
        columns: Sequence[str],
        numeric: Sequence[str],
        required: Sequence[str],
        header: bool,
        quoted: bool,
    ) -> None:
        self.path, self.raw, self.sep, self.delimiter = path, raw, sep, delimiter
        self.columns, self.numeric, self.required = list(columns), numeric, required
        self.header, self.quoted = header, quoted

    def diagnose(self, fallback: str) -> DataFormatError:
        """The first problem found, or ``fallback`` when every line looks right."""
        try:
            text = self.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self.raw[: exc.start].count(b"\n") + 1
            bad = self.raw[exc.start : exc.start + 4]
            return DataFormatError(
                self.path, f"bytes that are not valid UTF-8 ({exc.reason}: {bad!r})", line
            )
        reader = csv.reader(
            io.StringIO(text, newline=""),
            delimiter=self.delimiter,
            quotechar='"',
            quoting=csv.QUOTE_MINIMAL if self.quoted else csv.QUOTE_NONE,
            strict=False,
        )
        names = self.columns
        start_line = 1
        try:
            for fields in reader:
                line = start_line
                start_line = reader.line_num + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if self.header and names is self.columns:
                    found = [f.strip() for f in fields]
                    missing = [c for c in self.columns if c not in found]
                    if missing:
                        hint = _separator_hint(self.delimiter.join(fields), self.sep)
                        return DataFormatError(
                            self.path,
                            f"header lacks column(s) {missing}; found {found}{hint}",
                            line,
                        )
                    names = found
                    continue
                problem = self._check(fields, names)
                if problem:
                    return DataFormatError(self.path, problem, line)
        except csv.Error as exc:
            return DataFormatError(self.path, f"malformed line ({exc})", start_line)
        if self.header and names is self.columns:
            return DataFormatError(self.path, "file has no header line", 1)
        return DataFormatError(self.path, fallback)

    def _check(self, fields: list[str], names: list[str]) -> str | None:
        if len(fields) != len(names):
            return (
                f"expected {len(names)} fields separated by {self.sep!r}, found {len(fields)}"
                + _separator_hint(self.delimiter.join(fields), self.sep)
            )
        for col in self.required:
            if col in names and not fields[names.index(col)].strip():
                return f"column {col!r} is empty"
        for col in self.numeric:
            if col not in names:
                continue
            value = fields[names.index(col)].strip()
            if value == "":
                continue
            try:
                float(value)
            except ValueError:
                return f"column {col!r} must be numeric, found {value!r}"
        return None


def _separator_hint(line: str, expected: str) -> str:
    for candidate in _CANDIDATE_SEPARATORS:
        if candidate != expected and candidate in line:
            return f" (the line contains {candidate!r}: wrong separator?)"
    return ""
