"""Generate the metrics benchmark's data set directly in PostgreSQL (set-based SQL, seeded).

    python benchmarks/metrics_data.py [--customers 1000000] [--database-url URL]

Drops and recreates the database, migrates, and writes: a catalogue of 30 courses in six
categories (three launched in the last quarter) and 5 bundles; N customers (a tenth of them
organisations) with acquisition sources and a few referrers; about 4 orders per customer on
average over the two years that end on AS_OF (half the customers buy once, the others come back
a handful of times; 3 % refunded), one or two lines an order; enrolments for a quarter of the
lines, with progress; memberships for 5 % of the customers. Then the customer summaries are
computed and the tables analysed. It takes a few minutes at 1M customers.

The import path is benchmarked separately (benchmarks/import_orders.py); here the data are
written in bulk so that the metrics benchmark can start from a realistic table of millions of
orders in minutes, with the same schema and indexes the application uses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 30)
DEFAULT_URL = "postgres://root@127.0.0.1:5432/retention_metrics_bench"
CATEGORIES = ["business", "data", "design", "leadership", "public-sector", "technology"]


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def recreate(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True)


STEPS = [
    ("catalogue", """
        INSERT INTO retention_course (code, title, price, launched_on, is_active, category, level,
                                      created_at, updated_at)
        SELECT 'c-' || g, 'Course ' || g, 500 + 50 * g,
               CASE WHEN g > 27 THEN DATE %(as_of)s - (20 + g) ELSE DATE '2022-01-01' + 30 * g END,
               true, (%(categories)s::text[])[1 + g %% 6], 'beginner', now(), now()
        FROM generate_series(1, 30) g;
        INSERT INTO retention_bundle (code, title, price, launched_on, is_active, created_at,
                                      updated_at)
        SELECT 'b-' || g, 'Bundle ' || g, 2000 + 100 * g,
               CASE WHEN g = 5 THEN DATE %(as_of)s - 40 ELSE DATE '2023-01-01' + 60 * g END,
               true, now(), now()
        FROM generate_series(1, 5) g;
        INSERT INTO retention_bundle_courses (bundle_id, course_id)
        SELECT b.id, c.id FROM retention_bundle b JOIN retention_course c
          ON c.id %% 5 = b.id %% 5;
    """),
    ("customers", """
        INSERT INTO retention_customer (external_id, email, name, customer_type, organisation_name,
            sector, marketing_consent, acquisition_source, order_count, total_spent, created_at,
            updated_at)
        SELECT 'cust-' || g, 'c' || g || '@example.com', 'Customer ' || g,
               CASE WHEN g %% 10 = 0 THEN 'organisation' ELSE 'individual' END,
               CASE WHEN g %% 10 = 0 THEN 'Organisation ' || g ELSE '' END,
               CASE WHEN g %% 10 = 0 THEN (ARRAY['company', 'government', 'municipality',
                                                 'institution'])[1 + (g / 10) %% 4] ELSE '' END,
               g %% 3 <> 0,
               (ARRAY['organic', 'paid_search', 'referral', 'partner', 'email'])[1 + g %% 5],
               0, 0, now(), now()
        FROM generate_series(1, %(customers)s) g;
        UPDATE retention_customer SET referred_by_id = id - 7
        WHERE acquisition_source = 'referral' AND id > 7 AND id %% 4 = 0;
    """),
    ("orders", """
        SELECT setseed(0.42);
        CREATE TEMP TABLE plan AS
        SELECT id AS customer_id, (random() * 729)::int AS first_day,
               CASE WHEN random() < 0.5 THEN 1
                    ELSE 2 + floor(-ln(1 - random()) * 5.5)::int END AS n
        FROM retention_customer;
        INSERT INTO retention_order (external_id, customer_id, ordered_at, status, amount, currency,
                                     coupon_code, fingerprint, created_at, updated_at)
        SELECT 'o-' || p.customer_id || '-' || k, p.customer_id,
               (DATE %(as_of)s - 729 + CASE WHEN k = 0 THEN p.first_day
                    ELSE p.first_day + floor(random() * (730 - p.first_day))::int END)
                   + random() * interval '1 day',
               CASE WHEN random() < 0.03 THEN 'refunded' ELSE 'paid' END,
               CASE WHEN random() < 0.02 THEN 0 ELSE round((200 + random() * 4800)::numeric, 2) END,
               'ZAR', '', '', now(), now()
        FROM plan p, generate_series(0, p.n - 1) k;
    """),
    ("order lines", """
        SELECT setseed(0.43);
        -- An order buys a course or a bundle already launched, or about to be (early access
        -- up to 14 days before the launch), as in the sales platform's data.
        CREATE TEMP TABLE offered AS
        SELECT 'course' AS kind, id, launched_on, row_number() OVER (ORDER BY launched_on, id) AS n
        FROM retention_course
        UNION ALL
        SELECT 'bundle', id, launched_on, row_number() OVER (ORDER BY launched_on, id)
        FROM retention_bundle;
        INSERT INTO retention_orderline (order_id, position, course_id, bundle_id, price)
        SELECT o.id, 1,
               CASE WHEN o.kind = 'course' THEN pick.id END,
               CASE WHEN o.kind = 'bundle' THEN pick.id END,
               o.amount
        FROM (SELECT id, amount, (ordered_at AT TIME ZONE 'UTC')::date + 14 AS until,
                     CASE WHEN random() < 0.9 THEN 'course' ELSE 'bundle' END AS kind,
                     random() AS r
              FROM retention_order) o
        CROSS JOIN LATERAL (
            SELECT f.id FROM offered f
            WHERE f.kind = o.kind AND f.launched_on <= o.until
            ORDER BY f.n
            OFFSET floor(o.r * (SELECT count(*) FROM offered g
                                WHERE g.kind = o.kind AND g.launched_on <= o.until))::int
            LIMIT 1
        ) pick;
    """),
    ("enrolments", """
        SELECT setseed(0.44);
        INSERT INTO retention_enrolment (customer_id, course_id, source, started_on,
            last_activity_at, progress_percent, completed_on, created_at, updated_at)
        SELECT DISTINCT ON (o.customer_id, l.course_id) o.customer_id, l.course_id, 'purchase',
               (o.ordered_at AT TIME ZONE 'UTC')::date,
               o.ordered_at + interval '3 days', 40, NULL, now(), now()
        FROM retention_orderline l JOIN retention_order o ON o.id = l.order_id
        WHERE l.course_id IS NOT NULL AND o.status = 'paid' AND l.order_id %% 4 = 0
        ORDER BY o.customer_id, l.course_id, o.ordered_at;
    """),
    ("price update", """
        -- A price update four months before AS_OF: ten courses up 10 %%.
        INSERT INTO retention_pricechange (course_id, old_price, new_price, changed_at, note)
        SELECT id, round(price / 1.1, 2), price, (DATE %(as_of)s - 120) + interval '9 hours',
               'benchmark price update'
        FROM retention_course WHERE id %% 3 = 0;
    """),
    ("memberships", """
        SELECT setseed(0.45);
        INSERT INTO retention_membership (external_id, customer_id, plan, interval, price,
            started_on, ended_on, auto_renew, cancelled_at, created_at, updated_at)
        SELECT 'm-' || id, id, 'All-access', CASE WHEN id %% 3 = 0 THEN 'year' ELSE 'month' END,
               CASE WHEN id %% 3 = 0 THEN 3600 ELSE 349 END,
               DATE %(as_of)s - (random() * 700)::int, NULL, true, NULL, now(), now()
        FROM retention_customer WHERE id %% 20 = 0;
        UPDATE retention_membership SET ended_on = started_on + (random() * 300)::int,
               auto_renew = false, cancelled_at = started_on + interval '1 day'
        WHERE id %% 3 = 1;
        UPDATE retention_membership SET ended_on = NULL, auto_renew = true, cancelled_at = NULL
        WHERE ended_on > DATE %(as_of)s;
    """),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    options = parser.parse_args()

    started = time.perf_counter()
    recreate(options.database_url)
    setup_django(options.database_url)
    from django.db import connection

    from retention.sales import summaries

    params = {"as_of": AS_OF, "customers": options.customers, "categories": CATEGORIES}
    for name, sql in STEPS:
        began = time.perf_counter()
        with connection.cursor() as cursor:
            for statement in filter(str.strip, sql.split(";")):
                cursor.execute(statement, params)
        print(f"{name:>12}: {time.perf_counter() - began:6.1f} s", flush=True)
    began = time.perf_counter()
    summaries.refresh()
    print(f"{'summaries':>12}: {time.perf_counter() - began:6.1f} s", flush=True)
    connection.close()
    name = options.database_url.rsplit("/", 1)[1]
    subprocess.run(["psql", options.database_url, "-qc", "VACUUM ANALYZE"], check=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM retention_customer),"
                       " (SELECT count(*) FROM retention_order),"
                       " (SELECT count(*) FROM retention_order WHERE status = 'paid'),"
                       " pg_size_pretty(pg_database_size(current_database()))")
        customers, orders, paid, size = cursor.fetchone()
    print(f"{name}: {customers:,} customers, {orders:,} orders ({paid:,} paid), {size}, "
          f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
