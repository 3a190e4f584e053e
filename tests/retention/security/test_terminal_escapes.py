"""Text from an imported file reaches the terminal with its control characters escaped."""

import pytest

from retention.safetext import printable
from tests.retention.sales.test_import_orders import HEADER, import_fails

pytestmark = pytest.mark.django_db
ESC = "\x1b"


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    ("bell\x07 and back\x08space", "bell\\x07 and back\\x08space"),
    ("line\nbreak\r", "line\\x0abreak\\x0d"),
    ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override: text shown reversed
    ("\x9b31m", "\\x9b31m"),  # the 8-bit control sequence introducer
    ("Zoë Müller – 100 %", "Zoë Müller – 100 %"),  # ordinary text, accents included, is kept
])
def test_control_and_formatting_characters_are_shown_as_escapes(text, shown):
    assert printable(text) == shown


def test_a_bad_value_in_an_imported_row_is_echoed_with_its_escapes_visible(tmp_path):
    attack = "\x1b]0;owned\x07\x1b[2J\x1b[1;1H"
    stderr, message = import_fails(
        tmp_path, HEADER + f"o1,c1,2025-01-01T10:00:00Z,12{attack},,,,,,\n"
        f"o2,c2,not a date{attack},10.00,,,,,,\n")

    assert ESC not in stderr and "\x07" not in stderr
    assert "line 2, column amount" in stderr and "\\x1b]0;owned\\x07" in stderr
    assert "line 3, column ordered_at" in stderr
    assert "2 invalid rows; nothing was written" in message


def test_unknown_column_names_and_file_errors_are_escaped_too(tmp_path):
    stderr, message = import_fails(tmp_path, f"order_id,customer_id,amount,x{ESC}[5m\n")

    assert ESC not in message and "missing column ordered_at" in message
    assert "x\\x1b[5m" in message
