"""Text from outside (customers' names, imported rows) made safe for where it is shown.

- `spreadsheet_cell` and `SpreadsheetWriter`: every CSV the application writes goes through
  the writer, which neutralises text that a spreadsheet would run as a formula (OWASP's
  "CSV injection" rule: a cell starting with = + - @, a tab or a carriage return is prefixed
  with a single quote). Numbers, and text that is exactly a number, are left as they are.
- `printable`: control characters, escape sequences and invisible formatting characters
  are shown as escapes (`\\x1b`, `\\u202e`), so a value echoed to a terminal or a log
  cannot move the cursor, recolour the screen or reverse the text around it.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain number as the application writes one: "-12", "+3.5", "-0.25".
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def spreadsheet_cell(value) -> str:
    """The text of one CSV cell: empty for None, numbers as they are, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_START) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


class SpreadsheetWriter:
    """csv.writer whose `writerow` neutralises every cell and returns the written line.

    `writerow` returns the line (for streaming responses) and also writes it to `out`
    when one is given.
    """

    def __init__(self, out=None):
        self._out = out
        self._writer = csv.writer(_Echo())

    def writerow(self, row: Iterable) -> str:
        line = self._writer.writerow([spreadsheet_cell(value) for value in row])
        if self._out is not None:
            self._out.write(line)
        return line

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)


class _Echo:
    """A file-like object whose write returns the line: csv.writer then returns lines."""

    def write(self, value: str) -> str:
        return value


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control and formatting characters (Unicode Cc and Cf) shown as escapes."""
    return "".join(_escape(ch) if unicodedata.category(ch) in ("Cc", "Cf") else ch
                   for ch in str(text))
