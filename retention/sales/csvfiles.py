"""Reading order CSV files: header checks, line numbers and file-level errors.

`read_orders` streams (line number, row) pairs from a binary file and never
holds more than one row in memory. A row the CSV reader cannot split into the
header's fields becomes a RowError in the stream; a file that is not UTF-8 CSV
raises CsvFileError, because nothing after that point can be trusted.
"""

import codecs
import csv
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from retention.sales.validation import COLUMNS, REQUIRED_COLUMNS, RowError


class CsvFileError(Exception):
    """The file as a whole cannot be read; nothing from it should be written."""


def read_header(reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("the file is empty: expected a header row") from None
    header = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFileError(
            f"line 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)}; found: {', '.join(header) or 'nothing'})"
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise CsvFileError(f"line 1: column {', '.join(repeated)} appears more than once")
    return header


def unknown_columns(header: list[str]) -> list[str]:
    return [name for name in header if name not in COLUMNS]


def read_orders(raw: BinaryIO, *, header_out: list | None = None) -> Iterator[tuple[int, dict | RowError]]:
    """Yield (line number, row dict or RowError) for each non-blank data row.

    Line numbers are physical lines of the file (a quoted field may span lines;
    the row is numbered by its first line), so they match an editor's.
    """
    reader = csv.reader(_decoded_lines(raw))
    line = 1
    try:
        header = read_header(reader)
        if header_out is not None:
            header_out.extend(header)
        width = len(header)
        line = reader.line_num + 1
        for values in reader:
            if values:  # csv yields [] for an empty line
                if len(values) == width:
                    yield line, dict(zip(header, values, strict=True))
                elif len(values) == 1 and not values[0].strip():
                    pass  # a line of spaces only
                else:
                    yield line, RowError(
                        line, None, f"expected {width} fields as in the header, found {len(values)}"
                    )
            line = reader.line_num + 1
    except csv.Error as exc:
        raise CsvFileError(f"line {line}: not a readable CSV file ({exc})") from None


def _decoded_lines(raw: Iterable[bytes]) -> Iterator[str]:
    """Decode line by line, so that a byte that is not UTF-8 is reported on its own line."""
    for number, data in enumerate(raw, start=1):
        if number == 1 and data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
        if b"\x00" in data:  # PostgreSQL text cannot hold NUL, and no CSV export writes one
            raise CsvFileError(f"line {number}: NUL bytes found; this is not a text CSV file")
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvFileError(
                f"line {number}: the file is not UTF-8 text (byte "
                f"{exc.object[exc.start:exc.start + 1]!r} cannot be decoded); save it as UTF-8 CSV"
            ) from None
