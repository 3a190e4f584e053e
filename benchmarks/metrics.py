"""Benchmark the metrics engine, the cohort table, segments, the nightly run and the pages.

    python benchmarks/metrics.py [--generate] [--customers 1000000] [--database-url URL]
                                 [--repeat 3] [--skip-pandas] [--skip-nightly] [--skip-pages]

On the data set of benchmarks/metrics_data.py (generated first with --generate, or when
the database does not exist): 1M customers, about 4M orders over two years ending on
2026-11-30. It times, in this process:

1. a quarter's metrics (Q3 2026, and the fourth quarter to date), best and median of
   --repeat runs, and `manage.py compute_metrics --json` once as a user runs it;
2. the same quarter by a straightforward pandas reading of shared/spec/metrics.md
   (loading the tables, then computing), whose figures must equal the engine's;
3. the cohort table of the last 12 months, and one segment snapshot;
4. the nightly pipeline: a first run (everything), then nights after importing 1,000 and
   then 10,000 new orders through import_orders, each step timed;
5. the managers' pages after the nightly run: 30 requests each, median and 95th percentile.

Not part of `make test`. Needs pandas (`pip install pandas`; `make benchmark-metrics`
installs it).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import metrics_data  # noqa: E402

QUARTER = (date(2026, 7, 1), date(2026, 9, 30))
QUARTER_TO_DATE = (date(2026, 10, 1), metrics_data.AS_OF)
# The keys the pandas reading computes (memberships and surveys aside).
COMPARED = ["customers_start", "customers_end", "new_customers", "retained_customers",
            "reactivated_customers", "churned_customers", "retention_rate", "churn_rate",
            "orders", "revenue", "buyers", "repeat_purchase_rate", "repeat_customer_share",
            "returning_customer_rate", "purchase_frequency", "average_order_value",
            "existing_customer_revenue", "existing_customer_revenue_growth_rate",
            "historical_clv", "clv_simple", "new_offering_engagement_rate", "referral_rate"]


def timed(work, repeat: int = 1) -> tuple[float, float, object]:
    """(best, median, last result) of `repeat` runs of `work`, in seconds."""
    seconds, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - began)
    return min(seconds), statistics.median(seconds), result


def database_exists(url: str) -> bool:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    found = subprocess.run(["psql", admin, "-tAc",
                            f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                           capture_output=True, text=True, check=True)
    return found.stdout.strip() == "1"


# 2. The pandas reading ------------------------------------------------------------------------


def load_tables(connection) -> dict:
    """The tables the quarter's figures read, as DataFrames (COPY out of PostgreSQL)."""
    import pandas as pd

    queries = {
        "orders": "SELECT id, customer_id, ordered_at, status, amount FROM retention_order",
        "lines": "SELECT order_id, course_id, bundle_id FROM retention_orderline",
        "enrolments": "SELECT customer_id, course_id, started_on FROM retention_enrolment",
        "courses": "SELECT id, launched_on FROM retention_course",
        "bundles": "SELECT id, launched_on FROM retention_bundle",
        "customers": "SELECT id, referred_by_id FROM retention_customer",
    }
    tables = {}
    raw = connection.connection  # psycopg's own connection, for COPY
    for name, query in queries.items():
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT WITH CSV HEADER") as copy:
            for chunk in copy:
                buffer.write(chunk)
        buffer.seek(0)
        tables[name] = pd.read_csv(buffer)
    orders = tables["orders"]
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True, format="ISO8601")
    for name, column in (("enrolments", "started_on"), ("courses", "launched_on"),
                         ("bundles", "launched_on")):
        tables[name][column] = pd.to_datetime(tables[name][column])
    return tables


def pandas_quarter(tables: dict, start: date, end: date, *, window: int = 365,
                   new_window: int = 90, zone: str = "UTC") -> dict:
    """The spec read literally with pandas: sets of customers from filtered orders."""
    import numpy as np
    import pandas as pd

    def day(value: date):
        return pd.Timestamp(value)

    orders = tables["orders"]
    paid = orders[orders["status"] == "paid"].copy()
    paid["day"] = paid["ordered_at"].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()

    def between(a: date, b: date) -> pd.DataFrame:
        return paid[(paid["day"] >= day(a)) & (paid["day"] <= day(b))]

    def customers(frame) -> np.ndarray:
        return frame["customer_id"].unique()

    first = paid.groupby("customer_id")["day"].min()
    s, e = day(start), day(end)
    S = customers(between(start - timedelta(days=window), start - timedelta(days=1)))
    E = customers(between(end - timedelta(days=window - 1), end))
    R = np.intersect1d(S, E)
    new = first[(first >= s) & (first <= e)].index.to_numpy()
    existing = first[first < s].index.to_numpy()
    reactivated = np.setdiff1d(np.intersect1d(E, existing), S)
    in_p = between(start, end)
    per_buyer = in_p.groupby("customer_id").size()
    buyers = len(per_buyer)
    revenue = in_p["amount"].sum()
    to_end = paid[paid["day"] <= e].groupby("customer_id").agg(n=("id", "size"),
                                                                spent=("amount", "sum"))
    existing_revenue = in_p[in_p["customer_id"].isin(existing)]["amount"].sum()
    previous_start, previous_end = date(2026, 4, 1), date(2026, 6, 30)  # Q2 for Q3
    if start == QUARTER_TO_DATE[0]:
        previous_start, previous_end = date(2026, 8, 1), date(2026, 9, 30)  # 61 days before
    earlier = first[first < day(previous_start)].index
    before = between(previous_start, previous_end)
    existing_before = before[before["customer_id"].isin(earlier)]["amount"].sum()
    # clv_simple over Y, the 365 days ending at `end`
    y_start = end - timedelta(days=364)
    y_s = customers(between(y_start - timedelta(days=window), y_start - timedelta(days=1)))
    y_r = np.intersect1d(y_s, E)
    in_y = between(y_start, end)
    y_buyers = in_y["customer_id"].nunique()
    lifetime = 10.0 if len(y_s) == len(y_r) else min(10.0, len(y_s) / (len(y_s) - len(y_r)))
    clv = in_y["amount"].sum() / y_buyers * lifetime
    # new-offering engagement: lines for new offerings in P, or enrolments in new courses
    since = day(start - timedelta(days=new_window))
    new_courses = tables["courses"][tables["courses"]["launched_on"] >= since]["id"]
    new_bundles = tables["bundles"][tables["bundles"]["launched_on"] >= since]["id"]
    lines = tables["lines"]
    new_lines = lines[lines["course_id"].isin(new_courses) | lines["bundle_id"].isin(new_bundles)]
    bought_new = in_p[in_p["id"].isin(new_lines["order_id"])]["customer_id"].unique()
    enrolments = tables["enrolments"]
    started_new = enrolments[(enrolments["started_on"] >= s) & (enrolments["started_on"] <= e)
                             & enrolments["course_id"].isin(new_courses)]["customer_id"].unique()
    engaged = np.intersect1d(np.union1d(bought_new, started_new), S)
    referred = tables["customers"].dropna(subset=["referred_by_id"])
    referrers = referred[referred["id"].isin(new)]["referred_by_id"].nunique()

    def pct(part, whole):
        return None if not whole else round(100 * part / whole, 2)

    retention = pct(len(R), len(S))
    return {
        "customers_start": len(S), "customers_end": len(E), "new_customers": len(new),
        "retained_customers": len(R), "reactivated_customers": len(reactivated),
        "churned_customers": len(S) - len(R), "retention_rate": retention,
        "churn_rate": None if retention is None else round(100 - retention, 2),
        "orders": len(in_p), "revenue": round(revenue, 2), "buyers": buyers,
        "repeat_purchase_rate": pct((per_buyer >= 2).sum(), buyers),
        "repeat_customer_share": pct((to_end["n"] >= 2).sum(), len(to_end)),
        "returning_customer_rate": pct(len(np.intersect1d(per_buyer.index, existing)), buyers),
        "purchase_frequency": round(len(in_p) / buyers, 2),
        "average_order_value": round(revenue / len(in_p), 2),
        "existing_customer_revenue": round(existing_revenue, 2),
        "existing_customer_revenue_growth_rate": pct(existing_revenue - existing_before,
                                                     existing_before),
        "historical_clv": round(to_end["spent"].sum() / len(to_end), 2),
        "clv_simple": round(clv, 2),
        "new_offering_engagement_rate": pct(len(engaged), len(S)),
        "referral_rate": pct(referrers, len(E)),
    }


def differences(engine: dict, reading: dict) -> list[str]:
    """Keys where the two disagree by more than float rounding (0.011)."""
    wrong = []
    for key in COMPARED:
        a, b = engine[key], reading[key]
        if (a is None) != (b is None) or (a is not None and abs(float(a) - float(b)) > 0.011):
            wrong.append(f"{key}: engine {a}, pandas {b}")
    return wrong


# 4. Nights ------------------------------------------------------------------------------------


def write_day(path: Path, night: date, count: int, customers: int, seed: int) -> None:
    """`count` paid orders on `night`: a third from new customers, the rest from existing ones."""
    import random

    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "ordered_at", "amount", "items"])
        for n in range(count):
            who = (f"new-{night}-{n}" if n % 3 == 0
                   else f"cust-{rng.randrange(1, customers + 1)}")
            writer.writerow([f"day-{night}-{n}", who,
                             f"{night}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
                             f"{rng.randrange(20000, 500000) / 100:.2f}",
                             f"c-{rng.randrange(1, 28)}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=metrics_data.DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--generate", action="store_true", help="Write the data set afresh.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-nightly", action="store_true")
    parser.add_argument("--skip-pages", action="store_true")
    options = parser.parse_args()

    if options.generate or not database_exists(options.database_url):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "metrics_data.py"),
                        "--customers", str(options.customers),
                        "--database-url", options.database_url], check=True)
    else:  # an existing data set: bring its schema up to date first
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True,
                       env={**os.environ, "DATABASE_URL": options.database_url, "DEBUG": "1"})
    metrics_data.setup_django(options.database_url)
    from django.core.management import call_command
    from django.db import connection

    from retention import nightly
    from retention.figures import cohorts, metrics, segments

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM retention_customer),"
                       " (SELECT count(*) FROM retention_order), version()")
        customers, orders, version = cursor.fetchone()
    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"{version.split(',')[0]}; {customers:,} customers, {orders:,} orders", flush=True)

    print("\n1. a quarter's metrics (engine)")
    engine = {}
    for label, (start, end) in (("Q3 2026", QUARTER), ("Q4 2026 to date", QUARTER_TO_DATE)):
        best, median, figures = timed(lambda s=start, e=end: metrics.compute(s, e), options.repeat)
        engine[label] = figures
        print(f"   {label:>16}: best {best:6.2f} s, median {median:6.2f} s "
              f"(retention {figures['retention_rate']}, repeat {figures['repeat_purchase_rate']})",
              flush=True)
    env = {**os.environ, "DATABASE_URL": options.database_url, "DEBUG": "1"}
    began = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "compute_metrics", "--start", "2026-07-01",
                    "--end", "2026-09-30", "--json"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    print(f"   `manage.py compute_metrics --json` for Q3, start-up included: "
          f"{time.perf_counter() - began:.2f} s", flush=True)

    if not options.skip_pandas:
        print("\n2. the same quarters by a straightforward pandas reading of the spec")
        load_best, _median, tables = timed(lambda: load_tables(connection))
        print(f"   loading the tables (COPY to pandas): {load_best:6.2f} s", flush=True)
        for label, (start, end) in (("Q3 2026", QUARTER), ("Q4 2026 to date", QUARTER_TO_DATE)):
            best, median, reading = timed(lambda s=start, e=end: pandas_quarter(tables, s, e),
                                          options.repeat)
            wrong = differences(engine[label], reading)
            print(f"   {label:>16}: compute best {best:6.2f} s, median {median:6.2f} s, "
                  f"with loading {load_best + best:6.2f} s; "
                  f"{'figures equal the engine' if not wrong else 'DIFFER: ' + '; '.join(wrong)}",
                  flush=True)
        del tables

    print("\n3. cohort table and segments")
    best, median, _table = timed(lambda: cohorts.table(date(2025, 12, 1), metrics_data.AS_OF),
                                 options.repeat)
    print(f"   cohort table, 12 months: best {best:6.2f} s, median {median:6.2f} s", flush=True)
    from retention.figures.models import CustomerSegment

    CustomerSegment.objects.filter(snapshot_on=metrics_data.AS_OF).delete()  # a new night's
    best, _median, sizes = timed(lambda: segments.snapshot(metrics_data.AS_OF))
    print(f"   segment snapshot of {sum(sizes.values()):,} customers: {best:6.2f} s", flush=True)
    best, _median, sizes = timed(lambda: segments.snapshot(metrics_data.AS_OF))
    print(f"   the same night again (its {sum(sizes.values()):,} rows replaced): {best:6.2f} s",
          flush=True)

    if not options.skip_nightly:
        print("\n4. nightly runs")
        from retention.nightly.models import NightlyRun

        NightlyRun.objects.all().delete()
        night = metrics_data.AS_OF
        began = time.perf_counter()
        outcomes = nightly.run(night, full=True)
        print(f"   first run (every customer checked, the pages' periods computed): "
              f"{time.perf_counter() - began:6.1f} s")
        for name, _outcome, seconds in outcomes:
            print(f"      {name:>18}: {seconds:6.1f} s")
        for k, count in enumerate((1_000, 10_000), start=1):
            night = metrics_data.AS_OF + timedelta(days=k)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "day.csv"
                write_day(path, night, count, customers, seed=k)
                began = time.perf_counter()
                call_command("import_orders", str(path), stdout=io.StringIO())
                imported = time.perf_counter() - began
            began = time.perf_counter()
            outcomes = nightly.run(night)
            print(f"   night of {night} after importing {count:,} orders ({imported:.1f} s): "
                  f"{time.perf_counter() - began:6.1f} s")
            for name, outcome, seconds in outcomes:
                print(f"      {name:>18}: {seconds:6.1f} s  {outcome[:90]}")

    if not options.skip_pages:
        print("\n5. the managers' pages (30 requests each, after the nightly run)")
        pages(metrics_data.AS_OF if options.skip_nightly else night)


def pages(as_of: date) -> None:
    from unittest import mock

    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    user, _ = User.objects.get_or_create(username="bench-manager", defaults={"is_staff": True})
    user.groups.add(Group.objects.get_or_create(name="Managers")[0])
    client = Client()
    client.force_login(user)
    urls = ["/metrics/", "/metrics/?period=last_quarter", "/metrics/?period=this_month",
            "/metrics/?trend=months", "/metrics/cohorts/", "/metrics/segments/",
            "/metrics/price-update/", "/metrics/scorecard/"]
    with contextlib.ExitStack() as frozen:  # every page's "yesterday" is the data's last day
        for page in ("overview", "cohorts", "price_update", "scorecard", "segments"):
            module = f"retention.views.{page}"
            if hasattr(importlib.import_module(module), "last_complete_day"):
                frozen.enter_context(mock.patch(f"{module}.last_complete_day", return_value=as_of))
        for url in urls:
            first_began = time.perf_counter()
            response = client.get(url)
            first = time.perf_counter() - first_began
            assert response.status_code == 200, (url, response.status_code)
            seconds = []
            for _ in range(30):
                began = time.perf_counter()
                client.get(url)
                seconds.append(time.perf_counter() - began)
            seconds.sort()
            print(f"   {url:<32} first {first * 1000:7.0f} ms; then median "
                  f"{statistics.median(seconds) * 1000:5.0f} ms, p95 {seconds[28] * 1000:5.0f} ms",
                  flush=True)


if __name__ == "__main__":
    main()
