"""import_orders: the CSV contract of DESIGN.md, bad rows, idempotence, time zones."""

import io
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from retention.sales import ingest, summaries, validation
from retention.sales.models import Customer, Order, OrderLine
from tests.factories import BundleFactory, CourseFactory, CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "order_id,customer_id,ordered_at,amount,email,name,status,items,coupon_code,currency\n"


def run_import(tmp_path, text: str | bytes, *args) -> tuple[str, str]:
    """Run import_orders on a file holding `text`; return (stdout, stderr)."""
    path = tmp_path / "orders.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out, err = io.StringIO(), io.StringIO()
    call_command("import_orders", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_fails(tmp_path, text, *args) -> tuple[str, str]:
    """Run an import that must fail; return (stderr, the CommandError's message)."""
    path = tmp_path / "orders.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    err = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_orders", str(path), *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue(), str(failure.value)


@pytest.fixture
def catalogue():
    python = CourseFactory(code="PY101", price=Decimal("300.00"))
    sql = CourseFactory(code="SQL201", price=Decimal("100.00"))
    bundle = BundleFactory(code="DATA-PACK", price=Decimal("350.00"))
    bundle.courses.set([python, sql])
    return {"python": python, "sql": sql, "bundle": bundle}


def test_good_file_creates_customers_orders_and_lines(tmp_path, catalogue):
    out, err = run_import(
        tmp_path,
        HEADER
        + "A-1,C-1,2025-01-05,400.00,ann@example.com,Ann,paid,PY101|SQL201,WELCOME,ZAR\n"
        + "A-2,C-1,2025-02-10T09:30:00+00:00,350,,,Paid,DATA-PACK,,\n"
        + "A-3,C-2,2025-03-01,0,bob@example.com,Bob,,,,\n",
    )

    assert out.strip() == (
        "rows read: 3, created: 3, updated: 0, unchanged: 0, invalid: 0 (customers created: 2)"
    )
    assert err == ""
    ann = Customer.objects.get(external_id="C-1")
    assert (ann.email, ann.name, ann.customer_type) == ("ann@example.com", "Ann", "individual")
    assert ann.order_count == 2 and ann.total_spent == Decimal("750.00")
    assert ann.first_order_at == datetime(2025, 1, 5, tzinfo=UTC)
    assert ann.last_order_at == datetime(2025, 2, 10, 9, 30, tzinfo=UTC)
    first = Order.objects.get(external_id="A-1")
    assert (first.status, first.amount, first.coupon_code, first.currency) == (
        "paid", Decimal("400.00"), "WELCOME", "ZAR"
    )
    # 400.00 split by list prices 300:100.
    assert [(line.course.code, line.price) for line in first.lines.all()] == [
        ("PY101", Decimal("300.00")),
        ("SQL201", Decimal("100.00")),
    ]
    assert Order.objects.get(external_id="A-2").lines.get().bundle == catalogue["bundle"]
    free = Order.objects.get(external_id="A-3")
    assert free.amount == 0 and free.status == "paid" and not free.lines.exists()
    assert not summaries.stale().exists()


def test_line_prices_always_add_up_to_the_amount(tmp_path, catalogue):
    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,100.01,,,,PY101|SQL201|SQL201,,\n")

    lines = OrderLine.objects.filter(order__external_id="A-1").order_by("position")
    assert sum(line.price for line in lines) == Decimal("100.01")
    assert [line.position for line in lines] == [1, 2, 3]


def test_importing_the_same_file_twice_changes_nothing(tmp_path, catalogue):
    text = (
        HEADER
        + "A-1,C-1,2025-01-05,400.00,ann@example.com,Ann,paid,PY101|SQL201,,\n"
        + ",C-2,2025-03-01 10:00,99.50,,,,,,\n"
    )
    run_import(tmp_path, text)
    before = list(Order.objects.values_list("external_id", "updated_at", "fingerprint"))
    lines_before = list(OrderLine.objects.values_list("pk", flat=True))

    out, _ = run_import(tmp_path, text)

    assert out.strip() == (
        "rows read: 2, created: 0, updated: 0, unchanged: 2, invalid: 0 (customers created: 0)"
    )
    assert list(Order.objects.values_list("external_id", "updated_at", "fingerprint")) == before
    assert list(OrderLine.objects.values_list("pk", flat=True)) == lines_before
    assert Customer.objects.count() == 2


def test_a_changed_row_updates_its_order_and_the_customer_summary(tmp_path, catalogue):
    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,400.00,,,paid,PY101|SQL201,,\n")

    out, _ = run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,400.00,,,refunded,PY101,,\n")

    assert "created: 0, updated: 1, unchanged: 0" in out
    order = Order.objects.get(external_id="A-1")
    assert order.status == "refunded"
    assert [line.course.code for line in order.lines.all()] == ["PY101"]
    customer = Customer.objects.get(external_id="C-1")
    assert customer.order_count == 0 and customer.total_spent == 0
    assert customer.first_order_at is None


def test_moving_an_order_to_another_customer_refreshes_both(tmp_path, catalogue):
    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,10,,,,,,\n")

    run_import(tmp_path, HEADER + "A-1,C-2,2025-01-05,10,,,,,,\n")

    assert Customer.objects.get(external_id="C-1").order_count == 0
    assert Customer.objects.get(external_id="C-2").order_count == 1
    assert not summaries.stale().exists()


def test_rows_without_order_id_get_a_stable_key_and_identical_rows_are_one_order(tmp_path):
    row = ",C-1,2025-01-05T10:00:00,25.00,,,,,,\n"

    out, _ = run_import(tmp_path, HEADER + row + row)

    assert "created: 1, updated: 0, unchanged: 1" in out
    order = Order.objects.get()
    assert order.external_id.startswith("row-")
    # A later refund of the same order, without an id, updates it rather than adding one.
    out, _ = run_import(tmp_path, HEADER + ",C-1,2025-01-05T10:00:00,25.00,,,refunded,,,\n")
    assert "created: 0, updated: 1" in out
    assert Order.objects.get().status == "refunded"


def test_two_identical_orders_stay_apart_when_they_have_order_ids(tmp_path):
    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,25,,,,,,\nA-2,C-1,2025-01-05,25,,,,,,\n")

    assert Order.objects.count() == 2
    assert Customer.objects.get().order_count == 2


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("A-1,C-1,2025-13-01,10,,,,,,", 'line 2, column ordered_at: unparsable date "2025-13-01"'),
        ("A-1,C-1,yesterday,10,,,,,,", 'line 2, column ordered_at: unparsable date "yesterday"'),
        ("A-1,C-1,2025-01-05,-10.00,,,,,,", 'line 2, column amount: negative amount "-10.00"'),
        ("A-1,C-1,2025-01-05,10.005,,,,,,", 'line 2, column amount: "10.005" has more than 2 decimal'),
        ("A-1,C-1,2025-01-05,ten,,,,,,", 'line 2, column amount: "ten" is not an amount'),
        ("A-1,C-1,2025-01-05,1e3,,,,,,", 'line 2, column amount: "1e3" is not an amount'),
        ("A-1,C-1,2025-01-05,10,,,,NOPE,,", 'line 2, column items: unknown item code "NOPE"'),
        ("A-1,C-1,2025-01-05,10,,,pending,,,", 'line 2, column status: unknown status "pending"'),
        ("A-1,C-1,2025-01-05,10,,,,,,EUR", 'line 2, column currency: "EUR" is not the business'),
        ("A-1,,2025-01-05,10,,,,,,", "line 2, column customer_id: required, but empty"),
        ("A-1,C-1,2025-01-05,10,not-an-email,,,,,", 'line 2, column email: "not-an-email" is not'),
        ("A-1,C-1,2025-01-05,10", "line 2: expected 10 fields as in the header, found 4"),
    ],
)
def test_each_kind_of_bad_row_is_reported_and_nothing_is_written(tmp_path, row, expected):
    good = "A-0,C-0,2025-01-01,5,,,,,,\n"

    stderr, message = import_fails(tmp_path, HEADER + row + "\n" + good)

    assert stderr.startswith(expected)
    assert "1 invalid row; nothing was written" in message
    assert not Order.objects.exists() and not Customer.objects.exists()


def test_every_invalid_row_is_reported_with_its_line(tmp_path):
    stderr, message = import_fails(
        tmp_path,
        HEADER + "A-1,C-1,2025-01-05,-1,,,,,,\nA-2,C-1,2025-01-05,1,,,,,,\nA-3,C-1,bad,x,,,,,,\n",
    )

    assert stderr.splitlines() == [
        'line 2, column amount: negative amount "-1" (must be 0 or more)',
        'line 4, column ordered_at: unparsable date "bad" (use YYYY-MM-DD or an ISO 8601 '
        "date-time, years 1970 to 2999)",
        'line 4, column amount: "x" is not an amount (use digits with an optional "." and 2 '
        "decimals)",
    ]
    assert message.startswith("2 invalid rows; nothing was written")


def test_a_repeated_order_id_with_different_values_is_invalid(tmp_path):
    stderr, _ = import_fails(
        tmp_path, HEADER + "A-1,C-1,2025-01-05,10,,,,,,\nA-1,C-1,2025-01-05,12,,,,,,\n"
    )

    assert stderr.strip() == (
        'line 3, column order_id: order_id "A-1" already appears on line 2 with different values'
    )
    assert not Order.objects.exists()


def test_skip_invalid_imports_the_valid_rows_and_still_reports_the_others(tmp_path):
    out, err = run_import(
        tmp_path,
        HEADER + "A-1,C-1,2025-01-05,10,,,,,,\nA-2,C-1,2025-01-05,-3,,,,,,\n",
        "--skip-invalid",
    )

    assert "rows read: 2, created: 1, updated: 0, unchanged: 0, invalid: 1" in out
    assert "line 3, column amount: negative amount" in err
    assert list(Order.objects.values_list("external_id", flat=True)) == ["A-1"]


def test_dry_run_counts_but_writes_nothing(tmp_path):
    out, _ = run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,10,,,,,,\n", "--dry-run")

    assert "created: 1" in out and "Dry run: nothing was written." in out
    assert not Order.objects.exists() and not Customer.objects.exists()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("order_id,customer_id,ordered_at\n", "missing column amount"),
        ("order_id,name\n", "missing columns customer_id, ordered_at, amount"),
        ("customer_id,ordered_at,amount,amount\n", "column amount appears more than once"),
        ("", "the file is empty: expected a header row"),
    ],
)
def test_a_bad_header_stops_the_import(tmp_path, header, expected):
    _, message = import_fails(tmp_path, header + "C-1,2025-01-05,10\n" if header else "")

    assert expected in message and "Nothing was written." in message


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    text = (HEADER + "A-1,C-1,2025-01-05,10,,,,,,\nA-2,C-1,2025-01-05,10,,Jos\xe9,,,,\n").encode(
        "latin-1"
    )

    _, message = import_fails(tmp_path, text, "--skip-invalid")

    assert "line 3: the file is not UTF-8 text" in message
    assert not Order.objects.exists()


def test_a_binary_file_is_refused(tmp_path):
    _, message = import_fails(tmp_path, b"customer_id,ordered_at,amount\n\x00\x01\x02,\x00\n")

    assert "line 2: NUL bytes found; this is not a text CSV file" in message
    assert not Order.objects.exists()


def test_header_names_are_case_blind_and_extra_columns_are_noted(tmp_path):
    out, err = run_import(
        tmp_path, "Customer_ID, Ordered_At ,AMOUNT,channel\nC-1,2025-01-05,10,web\n"
    )

    assert "created: 1" in out
    assert "note: ignored unknown column(s): channel" in err


def test_utf8_bom_and_quoted_multiline_fields_are_read(tmp_path):
    text = '\ufeffcustomer_id,ordered_at,amount,name\nC-1,2025-01-05,10,"Ann\nSmith"\nC-2,2025-01-06,5,Bob\nC-3,bad,5,\n'

    stderr, _ = import_fails(tmp_path, text)

    # The quoted name spans lines 2-3, so the third row starts on line 5.
    assert stderr.startswith('line 5, column ordered_at: unparsable date "bad"')


def test_missing_customer_details_are_filled_in_but_never_overwritten(tmp_path):
    CustomerFactory(external_id="C-1", email="", name="Known Name")

    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,10,new@example.com,Other Name,,,,\n")

    customer = Customer.objects.get(external_id="C-1")
    assert (customer.email, customer.name) == ("new@example.com", "Known Name")


def test_item_codes_and_status_are_matched_case_blind(tmp_path, catalogue):
    run_import(tmp_path, HEADER + "A-1,C-1,2025-01-05,10,,,REFUNDED,py101| data-pack ,,zar\n")

    order = Order.objects.get()
    assert order.status == "refunded" and order.currency == "ZAR"
    assert [str(line) for line in order.lines.all()] == ["PY101", "DATA-PACK"]


@pytest.mark.parametrize(
    ("value", "expected_utc"),
    [
        # A plain date is midnight in the business zone (UTC+2).
        ("2025-03-01", datetime(2025, 2, 28, 22, tzinfo=UTC)),
        # A date-time without an offset is in the business zone too.
        ("2025-03-01T01:30:00", datetime(2025, 2, 28, 23, 30, tzinfo=UTC)),
        ("2025-03-01 01:30", datetime(2025, 2, 28, 23, 30, tzinfo=UTC)),
        # An offset is honoured.
        ("2025-03-01T01:30:00+00:00", datetime(2025, 3, 1, 1, 30, tzinfo=UTC)),
        ("2025-03-01T01:30:00Z", datetime(2025, 3, 1, 1, 30, tzinfo=UTC)),
    ],
)
def test_dates_are_read_in_the_business_time_zone(tmp_path, settings, value, expected_utc):
    settings.TIME_ZONE = "Africa/Johannesburg"

    run_import(tmp_path, f"customer_id,ordered_at,amount\nC-1,{value},10\n")

    assert Order.objects.get().ordered_at == expected_utc


def test_standard_input_can_be_imported(monkeypatch):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b"customer_id,ordered_at,amount\nC-1,2025-01-05,10\n"))
    )
    out = io.StringIO()

    call_command("import_orders", "-", stdout=out, stderr=io.StringIO())

    assert "created: 1" in out.getvalue()


def test_an_unreadable_path_is_a_clear_error():
    with pytest.raises(CommandError, match="cannot open /no/such/file.csv: No such file"):
        call_command("import_orders", "/no/such/file.csv")


VALIDATOR = validation.OrderValidator(offerings={}, currency="ZAR", zone=UTC)


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(validation.COLUMNS), st.text(max_size=30)))
def test_validation_never_raises_on_any_row(row):
    """Whatever a row holds, validation returns a record or errors naming the row's columns."""
    record, errors = VALIDATOR.validate(row, 7)

    assert (record is None) == bool(errors)
    assert all(error.line == 7 and error.column in validation.COLUMNS for error in errors)


@hsettings(max_examples=300)
@given(st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2))
def test_any_two_place_amount_is_read_exactly(amount):
    record, errors = VALIDATOR.validate(
        {"customer_id": "C", "ordered_at": "2025-01-01", "amount": str(amount)}, 2
    )

    assert errors == []
    assert validation.cents_to_decimal(record.amount_cents) == amount


def test_lines_are_split_by_the_list_prices_in_force_on_the_order_date(tmp_path, catalogue):
    """After a price change, an old order re-imported splits as it did on its day."""
    from retention.sales import catalogue as offerings

    python = catalogue["python"]
    python.price = Decimal("100.00")  # was 300.00; SQL201 stays at 100.00
    offerings.save_offering(python, changed_at=datetime(2025, 6, 1, tzinfo=UTC))

    run_import(
        tmp_path,
        HEADER + "OLD,C-1,2025-05-31,400,,,,PY101|SQL201,,\nNEW,C-1,2025-06-02,200,,,,PY101|SQL201,,\n",
    )

    def split(key):
        return [line.price for line in Order.objects.get(external_id=key).lines.all()]

    assert split("OLD") == [Decimal("300.00"), Decimal("100.00")]
    assert split("NEW") == [Decimal("100.00"), Decimal("100.00")]


@pytest.mark.django_db(transaction=True)
def test_foreign_keys_are_deferred_again_after_an_import(tmp_path):
    """The import checks its constraints early, then gives the caller Django's default back."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SET CONSTRAINTS is PostgreSQL's")
    with transaction.atomic():
        ingest.import_rows([(2, {"customer_id": "C-1", "ordered_at": "2025-01-05", "amount": "1"})])
        with connection.cursor() as cursor:
            # A row pointing at a customer that does not exist yet is fine until commit.
            cursor.execute(
                "INSERT INTO retention_order (external_id, customer_id, ordered_at, status, amount,"
                " currency, coupon_code, fingerprint, created_at, updated_at) VALUES"
                " ('late', 999999, now(), 'paid', 1, 'ZAR', '', '', now(), now())"
            )
            cursor.execute("DELETE FROM retention_order WHERE external_id = 'late'")
    assert Order.objects.count() == 1


def test_an_import_stopped_by_a_concurrent_one_says_to_run_it_again(tmp_path, monkeypatch):
    from django.db import OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    def stopped(*args, **kwargs):
        raise OperationalError("deadlock detected") from Deadlock()

    monkeypatch.setattr(ingest, "import_rows", stopped)

    _, message = import_fails(tmp_path, HEADER + "A-1,C-1,2025-01-05,10,,,,,,\n")

    assert "Nothing was written; run it again." in message


def test_every_problem_of_a_row_is_named_and_a_refused_run_adds_up(tmp_path):
    stderr, message = import_fails(
        tmp_path, HEADER + "o1,c1,not a date,12x,,,,,,\n"
        "o2,c2,2025-01-01T10:00:00Z,10.00,,,,,,\n"
        "o3,c3,2025-01-02T10:00:00Z,11.00,,,,,,\n")

    assert "line 2, column ordered_at: unparsable date" in stderr
    assert "line 2, column amount: \"12x\" is not an amount" in stderr
    assert "1 invalid row; nothing was written" in message


def test_a_refused_runs_summary_divides_the_rows_read(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "o1,c1,not a date,12x,,,,,,\no2,c2,2025-01-01T10:00:00Z,10.00,,,,,,\n"
                    "o3,c3,2025-01-02T10:00:00Z,11.00,,,,,,\n")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_orders", str(path), stdout=out, stderr=io.StringIO())
    assert "rows read: 3, valid: 2, invalid: 1" in out.getvalue()
    assert Order.objects.count() == 0


def test_an_order_dated_in_the_future_is_imported_with_a_warning(tmp_path):
    out, err = run_import(tmp_path, HEADER + "o1,c1,2099-01-01T10:00:00Z,10.00,,,,,,\n"
                          "o2,c2,2025-01-01T10:00:00Z,10.00,,,,,,\n")

    assert "line 2, column ordered_at: warning: dated in the future (2099-01-01 10:00" in err
    assert "created: 2" in out and "warnings: 1" in out
    assert Order.objects.count() == 2


def test_orders_dated_in_the_future_can_be_refused(tmp_path, settings):
    settings.RETENTION_IMPORT_FUTURE_ORDERS = "refuse"
    stderr, message = import_fails(tmp_path, HEADER + "o1,c1,2099-01-01T10:00:00Z,10.00,,,,,,\n")

    assert "line 2, column ordered_at: dated in the future (2099-01-01 10:00" in stderr
    assert "1 invalid row" in message and Order.objects.count() == 0


def test_a_dry_run_with_invalid_rows_still_says_it_was_a_dry_run(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "o1,c1,not a date,10.00,,,,,,\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 invalid row"):
        call_command("import_orders", str(path), "--dry-run", stdout=out, stderr=io.StringIO())
    assert "Dry run: nothing was written." in out.getvalue()
