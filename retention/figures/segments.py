"""RFM scores, named segments per snapshot date, and the migration between two dates.

Over the lookback (LOOKBACK_DAYS up to the as-of date, both included), each
customer with a paid order in it gets recency (days since their last order),
frequency (orders) and monetary (revenue), scored 1-5 by quintile: a score is
ceil(5 × the share of customers whose value is no better), so the best value
scores 5 and equal values always score the same. Every customer with a paid
order dated on or before the as-of date gets exactly one segment, the first
rule of spec.SEGMENTS that holds (the table the README publishes).

`snapshot(on)` stores the segments of a date with INSERT ... SELECT: the
per-customer facts (one pass over the orders, into a temporary table), the
counts per distinct value that score them and the rules run in the database,
never row by row in Python. It replaces the date's earlier rows, so it can run
twice.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DecimalField, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, ExtractMonth, ExtractYear, TruncDate
from django.utils import timezone

from retention.figures import reports
from retention.figures.models import CustomerSegment, StoredReport
from retention.figures.spec import SEGMENT_NAMES
from retention.money import money
from retention.periods import is_month_end, midnight
from retention.sales.models import Order

LOOKBACK_DAYS = 365
SIZES_REPORT = "segment_sizes"


RULES_SQL = """CASE
    WHEN s.orders_ever = 1 THEN 'one_time'
    WHEN s.orders_ever = 2 THEN 'two_time'
    WHEN s.r >= 4 AND s.f >= 4 AND s.m >= 4 THEN 'loyalist'
    WHEN s.spent_year_before > 0 AND s.monetary * 2 < s.spent_year_before THEN 'under_performer'
    WHEN s.year_months > s.months THEN 'seasonal'
    WHEN s.r <= 2 AND s.f >= 3 THEN 'at_risk'
    WHEN s.r >= 4 THEN 'promising'
    ELSE 'regular'
END"""


def _score(k: str) -> str:
    # ceil(5 k / n) for k of n customers with a value no better, in whole numbers.
    return (f"CASE WHEN 5 * {k} <= total.n THEN 1 WHEN 5 * {k} <= 2 * total.n THEN 2 "
            f"WHEN 5 * {k} <= 3 * total.n THEN 3 WHEN 5 * {k} <= 4 * total.n THEN 4 ELSE 5 END")


def _facts(on: date):
    """Per customer with a paid order on or before `on`: the facts the rules read."""
    zone = ZoneInfo(settings.TIME_ZONE)
    end_at = midnight(on + timedelta(days=1), zone)
    lookback_at = midnight(on - timedelta(days=LOOKBACK_DAYS - 1), zone)
    year_before_at = midnight(on - timedelta(days=2 * LOOKBACK_DAYS - 1), zone)
    amount = DecimalField(max_digits=14, decimal_places=2)
    in_lookback = Q(ordered_at__gte=lookback_at)
    return (
        Order.objects.counting().filter(ordered_at__lt=end_at).order_by().values("customer")
        .annotate(
            last_on=Max(TruncDate("ordered_at", tzinfo=zone)),
            orders_ever=Count("pk"),
            frequency=Count("pk", filter=in_lookback),
            monetary=Coalesce(Sum("amount", filter=in_lookback), Value(0), output_field=amount),
            spent_year_before=Coalesce(
                Sum("amount", filter=Q(ordered_at__gte=year_before_at, ordered_at__lt=lookback_at)),
                Value(0), output_field=amount,
            ),
            months=Count(ExtractMonth("ordered_at", tzinfo=zone), distinct=True),
            year_months=Count(
                ExtractYear("ordered_at", tzinfo=zone) * 100 + ExtractMonth("ordered_at", tzinfo=zone),
                distinct=True,
            ),
        )
    )


def _days_since(on: date, column: str) -> tuple[str, list]:
    if connection.vendor == "postgresql":
        return f"(CAST(%s AS date) - CAST({column} AS date))", [on]
    return f"CAST(julianday(%s) - julianday({column}) AS integer)", [on.isoformat()]


FACTS = "retention_segment_facts"


def snapshot(on: date) -> dict[str, int]:
    """Store every customer's segment on `on` (replacing that date's rows); return the sizes.

    The per-customer facts are aggregated once into a temporary table (one pass over
    the orders), which the two inserts then read: the scored customers with an order
    in the lookback, and the inactive ones.
    """
    table = CustomerSegment._meta.db_table
    columns = ("snapshot_on, customer_id, segment, recency_score, frequency_score, monetary_score, "
               "recency_days, frequency, monetary")
    facts_sql, facts_params = _facts(on).query.sql_with_params()
    days, days_params = _days_since(on, "s.last_on")
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the three rankings sort every customer
            cursor.execute("SELECT set_config('work_mem', %s, true)",
                           [settings.RETENTION_METRICS_WORK_MEM])
        CustomerSegment.objects.filter(snapshot_on=on).delete()
        cursor.execute(f"DROP TABLE IF EXISTS {FACTS}")
        cursor.execute(f"CREATE TEMPORARY TABLE {FACTS} AS {facts_sql}", facts_params)
        # The score of a value is ceil(5 k / n), where k customers have a value no better
        # and n is everyone scored: counted once per distinct value (a few hundred days,
        # a few dozen order counts), then joined back, in whole numbers (5 k <= n …).
        cursor.execute(
            f"""WITH active AS (SELECT * FROM {FACTS} WHERE frequency > 0),
                total AS (SELECT COUNT(*) AS n FROM active),
                by_recency AS (SELECT last_on AS v, SUM(COUNT(*)) OVER (ORDER BY last_on) AS k
                               FROM active GROUP BY last_on),
                by_frequency AS (SELECT frequency AS v,
                                        SUM(COUNT(*)) OVER (ORDER BY frequency) AS k
                                 FROM active GROUP BY frequency),
                by_monetary AS (SELECT monetary AS v, SUM(COUNT(*)) OVER (ORDER BY monetary) AS k
                                FROM active GROUP BY monetary)
                INSERT INTO {table} ({columns})
                SELECT %s, s.customer, {RULES_SQL}, s.r, s.f, s.m, {days}, s.frequency, s.monetary
                FROM (SELECT a.*, {_score("r.k")} AS r, {_score("f.k")} AS f,
                             {_score("m.k")} AS m
                      FROM active a CROSS JOIN total
                      JOIN by_recency r ON r.v = a.last_on
                      JOIN by_frequency f ON f.v = a.frequency
                      JOIN by_monetary m ON m.v = a.monetary) s""",
            [on, *days_params],
        )
        cursor.execute(
            f"""INSERT INTO {table} ({columns})
                SELECT %s, s.customer, 'inactive', NULL, NULL, NULL, {days}, 0, 0
                FROM {FACTS} s WHERE s.frequency = 0""",
            [on, *days_params],
        )
        cursor.execute(f"DROP TABLE {FACTS}")
        found = sizes(on)
        # The sizes are stored beside the rows: the pages read them, and their keys
        # are the list of snapshot dates (a DISTINCT over millions of rows is not).
        StoredReport.objects.update_or_create(
            kind=SIZES_REPORT, key=on.isoformat(),
            defaults={"depends_until": on, "data": {"on": on.isoformat(), "sizes": found},
                      "computed_at": timezone.now()})
    return found


def stored_sizes(on: date) -> dict[str, int]:
    """The sizes stored with the snapshot of `on`, else counted (zeros without a snapshot)."""
    row = StoredReport.objects.filter(kind=SIZES_REPORT, key=on.isoformat()).first()
    return row.data["sizes"] if row is not None else sizes(on)


def sizes(on: date) -> dict[str, int]:
    """Customers per segment on a snapshot date, in the order of spec.SEGMENTS (one query)."""
    counts = dict(
        CustomerSegment.objects.filter(snapshot_on=on).order_by().values_list("segment")
        .annotate(n=Count("pk"))
    )
    return {name: counts.get(name, 0) for name in SEGMENT_NAMES}


def migration(first: date, second: date) -> list[dict]:
    """Moves between two snapshot dates: customers and revenue at stake per (from, to) pair.

    The revenue at stake is the customers' revenue in the 365 days up to and including
    `first`: the same days the segments of `first` were read from.
    A customer without a segment on `first` (no paid order yet) comes from "new".
    One query: the second date's rows joined to the first's and to each customer's
    revenue in that year (both hash joins), grouped by the pair.
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    since_at, until_at = (connection.ops.adapt_datetimefield_value(midnight(day, zone))
                          for day in (first - timedelta(days=LOOKBACK_DAYS - 1),
                                      first + timedelta(days=1)))
    table, order = CustomerSegment._meta.db_table, Order._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT COALESCE(s1.segment, 'new'), s2.segment, COUNT(*),
                       COALESCE(SUM(r.total), 0)
                FROM {table} s2
                LEFT JOIN {table} s1 ON s1.customer_id = s2.customer_id AND s1.snapshot_on = %s
                LEFT JOIN (SELECT customer_id, SUM(amount) AS total FROM {order}
                           WHERE status = 'paid' AND ordered_at >= %s AND ordered_at < %s
                           GROUP BY customer_id) r ON r.customer_id = s2.customer_id
                WHERE s2.snapshot_on = %s
                GROUP BY COALESCE(s1.segment, 'new'), s2.segment
                ORDER BY 1, 2""",
            [connection.ops.adapt_datefield_value(first), since_at, until_at,
             connection.ops.adapt_datefield_value(second)],
        )
        rows = cursor.fetchall()
    return [{"from": origin, "to": destination, "customers": customers,
             "revenue": money(Decimal(str(revenue)))}
            for origin, destination, customers, revenue in rows]


MOVES_REPORT = "segment_moves"


def stored_migration(first: date, second: date, *, refresh: bool = False) -> list[dict]:
    """`migration(first, second)`, kept as a stored report until data by `second` changes."""
    return reports.cached(MOVES_REPORT, f"{first}..{second}", depends_until=second,
                          compute=lambda: {"moves": migration(first, second)},
                          refresh=refresh)["moves"]


def default_pair(available: list[date]) -> tuple[date, date]:
    """The moves the page shows first: from the latest snapshot a quarter or more before
    the latest one (else the earliest) to the latest. `available` is newest first."""
    latest = available[0]
    earlier = [day for day in available if day <= latest - timedelta(days=90)]
    return (earlier[0] if earlier else available[-1]), latest


def prune(*, keep_days: int, today: date) -> int:
    """Delete the segment snapshots older than `keep_days` before `today`, except those of
    the last day of a month (kept for good, for moves over long spans); return how many
    dates were deleted. A snapshot stores a row per customer, so daily ones add up."""
    cutoff = today - timedelta(days=keep_days)
    old = [day for day in snapshot_dates()
           if day < cutoff and not is_month_end(day)]
    for day in old:
        with transaction.atomic():
            CustomerSegment.objects.filter(snapshot_on=day).delete()
            StoredReport.objects.filter(kind=SIZES_REPORT, key=day.isoformat()).delete()
            StoredReport.objects.filter(kind=MOVES_REPORT, key__contains=day.isoformat()).delete()
    return len(old)


def snapshot_dates() -> list[date]:
    """The dates that have a segment snapshot, newest first (read from their stored sizes)."""
    keys = StoredReport.objects.filter(kind=SIZES_REPORT).values_list("key", flat=True)
    return sorted((date.fromisoformat(key) for key in keys), reverse=True)
