"""Benchmark the loyalty core on PostgreSQL: earning on a 1M-order import, reconciling 1M
accounts, and redemptions per second with concurrent clients.

    python benchmarks/loyalty.py [--orders 1000000] [--accounts 1000000] [--clients 8]
                                 [--redemptions 4000] [--skip-without] [--keep]
                                 [--database-url postgres://root@127.0.0.1:5432/loyalty_bench]

Generates a deterministic CSV under benchmarks/out/ (orders over the last 700 days for
orders/4 customers, 1 in 3 with two items, 1 in 10 with a bundle, 3 % refunded and 1 %
cancelled), **drops and recreates** the database (a scratch one: default `loyalty_bench`;
dropped again at the end unless --keep),
migrates, loads a catalogue of 30 courses and 5 bundles, the program (14 refund days, expiry
after 365 days), one per-amount rule (a point per rand), one bundle rule (200 points) and three
tiers (×1, ×1.25, ×1.5), and the file's customers with their accounts, a third of them silver
and a third gold (an existing customer base, so that the multiplier applies). Then:

a. imports the file with `import_orders` in this process, without loyalty (the receiver
   disconnected; in a database of its own, made the same way, unless --skip-without), then with
   it, and prints each import's phases (`MergeResult.timings`: "programs" is the earning); then
   the same file again (unchanged: nothing to earn), and a file refunding 1 % of the paid
   orders (cancellations and reversals);
b. tops the accounts up to --accounts with customers holding a lot each (a quarter with a
   debit drawn on it), and times `loyalty.reconcile.reconcile()` (cold, then warm);
c. runs --clients processes that redeem at once: first each on customers of its own (a
   reward without stock), then all on one reward whose stock is half the attempts, and prints
   redemptions per second, latencies, and that the stock was never oversold.

Aims: earning (the programs phase) under 30 s, reconciliation under 10 s. Prints the machine's
cores and memory and the row counts. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DEFAULT_URL = "postgres://root@127.0.0.1:5432/loyalty_bench"
COURSES = [f"C{n:03d}" for n in range(30)]
BUNDLES = [f"B{n}" for n in range(5)]


# The data ---------------------------------------------------------------------------------------


def rows_of(orders: int, today: date, seed: int = 7):
    """(order_id, customer number, day, amount, status, items) of the benchmark's orders."""
    rng = random.Random(seed)
    customers = max(orders // 4, 1)
    for n in range(orders):
        customer = rng.randrange(customers)
        day = today - timedelta(days=rng.randrange(700))
        items = rng.sample(COURSES, 2 if rng.random() < 0.33 else 1)
        if rng.random() < 0.1:
            items[0] = rng.choice(BUNDLES)
        roll = rng.random()
        status = "refunded" if roll < 0.03 else "cancelled" if roll < 0.04 else "paid"
        yield (f"L-{n}", customer, day, f"{rng.randrange(0, 500000) / 100:.2f}", status,
               "|".join(items))


def write_csv(path: Path, rows) -> int:
    count = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "ordered_at", "amount", "email", "name",
                         "status", "items", "coupon_code", "currency"])
        for order_id, customer, day, amount, status, items in rows:
            writer.writerow([order_id, f"cust-{customer}", day.isoformat(), amount,
                             f"c{customer}@example.com", f"Customer {customer}", status, items,
                             "", "ZAR"])
            count += 1
    return count


def refunds_of(rows):
    """1 in 100 of the paid orders, refunded."""
    for n, row in enumerate(rows):
        if n % 100 == 0 and row[4] == "paid":
            yield (*row[:4], "refunded", row[5])


# The database ---------------------------------------------------------------------------------


def drop(url: str) -> None:
    from django.db import connections

    connections.close_all()
    name, admin = url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)


def recreate(url: str) -> None:
    drop(url)
    name, admin = url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT,
                   env={**os.environ, "DATABASE_URL": url}, check=True)


def insert_generated(model, count: int, overrides: dict[str, str], source: str = "") -> None:
    """INSERT one row of `model` per g in 0 … count-1 (or per row of `source`, a FROM
    clause), each column given by `overrides` (SQL) or else its model default, so that the
    benchmark does not depend on every column of the tables."""
    from django.db import connection
    from django.db.models import DateTimeField

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.name in overrides or field.attname in overrides:
            expression = overrides.get(field.name, overrides.get(field.attname))
        elif isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add):
            expression = "now()"
        elif field.has_default() or (field.empty_strings_allowed and not field.null):
            expression = "%s"  # a default, or the empty string of a text column
            params.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.has_db_default():
            continue
        elif field.null:
            expression = "NULL"
        else:
            raise RuntimeError(f"{model.__name__}.{field.name}: no value for the benchmark")
        columns.append(connection.ops.quote_name(field.column))
        values.append(expression)
    source = source or f"generate_series(0, {count - 1}) g"
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
                       f"SELECT {', '.join(values)} FROM {source}", params)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def seed(customers: int) -> None:
    """The catalogue, the program, its rules and tiers, the file's customers and accounts."""
    from loyalty.models import Account, Program, Rule, Tier
    from retention.sales.models import Bundle, Course, Customer

    Course.objects.bulk_create([
        Course(code=code, title=code, price=100 + n, launched_on=date(2023, 1, 1),
               category=f"cat-{n % 6}") for n, code in enumerate(COURSES)])
    Bundle.objects.bulk_create([Bundle(code=code, title=code, price=300,
                                       launched_on=date(2023, 1, 1)) for code in BUNDLES])
    program = Program.current()
    program.refund_days, program.expiry_days = 14, 365
    program.save()
    Rule.objects.create(code="spend", title="A point per rand", kind=Rule.Kind.PER_AMOUNT,
                        points=1)
    Rule.objects.create(code="bundle", title="Bundle bonus", kind=Rule.Kind.BUNDLE, points=200)
    tiers = [Tier.objects.create(code="bronze", title="Bronze", threshold=0),
             Tier.objects.create(code="silver", title="Silver", threshold=1000,
                                 multiplier="1.25"),
             Tier.objects.create(code="gold", title="Gold", threshold=3000, multiplier="1.5")]
    insert_generated(Customer, customers, {
        "external_id": "'cust-' || g", "email": "'c' || g || '@example.com'",
        "name": "'Customer ' || g"})
    insert_generated(Account, 0, {
        "customer": "c.id", "created_at": "now()",
        "tier": f"CASE c.id %% 3 WHEN 0 THEN {tiers[0].pk} WHEN 1 THEN {tiers[1].pk} "
                f"ELSE {tiers[2].pk} END"},
        source=f"{Customer._meta.db_table} c")
    analyze()


# Phases ---------------------------------------------------------------------------------------


def checkpoint() -> None:
    """Write out the dirty pages of the phases before, so that they do not slow the next."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # not a superuser (nor pg_checkpoint): measure as it is
        pass


def timed_import(path: Path, statements: list | None = None) -> tuple[float, dict[str, float], str]:
    """Import `path` in this process; with `statements`, collect (seconds, SQL) of the
    loyalty statements that took more than a tenth of a second."""
    from django.core.management import call_command
    from django.db import connection

    def timing(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - began
            if spent > 0.1 and "loyalty_" in sql[:200]:
                statements.append((spent, " ".join(sql.split())[:90]))

    checkpoint()
    out = io.StringIO()
    began = time.perf_counter()
    if statements is None:
        call_command("import_orders", str(path), verbosity=2, stdout=out, stderr=io.StringIO())
    else:
        with connection.execute_wrapper(timing):
            call_command("import_orders", str(path), verbosity=2, stdout=out,
                         stderr=io.StringIO())
    seconds = time.perf_counter() - began
    text = out.getvalue()
    phases = {m[1]: float(m[2]) for m in re.finditer(r"^  (.+): ([\d.]+) s$", text, re.MULTILINE)}
    return seconds, phases, text.splitlines()[0]


def show_import(label: str, rows: int, seconds: float, phases: dict[str, float], summary: str):
    print(f"{label}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s); {summary}")
    print("    " + ", ".join(f"{name} {value:.1f} s" for name, value in phases.items()),
          flush=True)


def counts() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        found = []
        for table in ("retention_customer", "retention_order", "loyalty_account",
                      "loyalty_entry", "loyalty_draw", "loyalty_redemption"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            found.append(f"{table} {cursor.fetchone()[0]:,}")
    return ", ".join(found)


def top_up_accounts(target: int) -> int:
    """Accounts up to `target`: customers acct-N, each with a lot of 500 points (a quarter
    with a debit of 100 drawn on it), balances set by ledger.refresh. Returns how many."""
    from django.db import connection

    from loyalty import ledger
    from loyalty.models import Account, Entry
    from retention.sales.models import Customer

    extra = target - Account.objects.count()
    if extra <= 0:
        return 0
    insert_generated(Customer, extra, {
        "external_id": "'acct-' || g", "email": "'a' || g || '@example.org'",
        "name": "'Account ' || g"})
    new = f"SELECT id FROM {Customer._meta.db_table} WHERE external_id LIKE 'acct-%%'"
    insert_generated(Account, 0, {"customer": "c.id", "created_at": "now()"},
                     source=f"{Customer._meta.db_table} c WHERE c.external_id LIKE 'acct-%%'")
    accounts = (f"SELECT a.id FROM {Account._meta.db_table} a WHERE a.customer_id IN ({new})")
    entries = Entry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {entries} (account_id, kind, points, status, reason, source,
                    source_ref, key, created_at, earned_on, available_on, expires_on,
                    remaining, shortfall)
                SELECT a.id, 'adjust', 500, 'available', 'Benchmark gift', 'staff', 'bench',
                    'bench-gift:' || a.id, now(), CURRENT_DATE - 30, CURRENT_DATE - 30,
                    CURRENT_DATE + 335, CASE WHEN a.id %% 4 = 0 THEN 400 ELSE 500 END, 0
                FROM {Account._meta.db_table} a WHERE a.id IN ({accounts})""", [])
        cursor.execute(
            f"""INSERT INTO {entries} (account_id, kind, points, status, reason, source,
                    source_ref, key, created_at, earned_on, remaining, shortfall)
                SELECT a.id, 'adjust', -100, 'available', 'Benchmark debit', 'staff', 'bench',
                    'bench-debit:' || a.id, now(), CURRENT_DATE - 10, 0, 0
                FROM {Account._meta.db_table} a WHERE a.id IN ({accounts}) AND a.id %% 4 = 0""",
            [])
        cursor.execute(
            f"""INSERT INTO loyalty_draw (debit_id, lot_id, points)
                SELECT d.id, l.id, 100 FROM {entries} d
                JOIN {entries} l ON l.key = 'bench-gift:' || d.account_id
                WHERE d.key LIKE 'bench-debit:%%'""", [])
    began = time.perf_counter()
    ledger.refresh(accounts, [])
    print(f"    ledger.refresh of {extra:,} accounts: {time.perf_counter() - began:.1f} s",
          flush=True)
    analyze()
    return extra


def redeemer(number, customer_ids, reward_code, barrier, results):
    """One client: redeem `reward_code` once for each of its customers."""
    from django.db import connection

    from loyalty import redemptions
    from loyalty.models import Reward
    from retention.sales.models import Customer

    connection.close()  # the parent's connection is not this process's
    reward = Reward.objects.get(code=reward_code)
    customers = list(Customer.objects.filter(pk__in=customer_ids).order_by("pk"))
    refused, latencies = {}, []
    barrier.wait()
    began = time.time()
    for customer in customers:
        started = time.perf_counter()
        try:
            redemptions.redeem(customer, reward, key=f"bench-{reward_code}-{customer.pk}")
        except redemptions.RedemptionRefused as exc:
            refused[exc.code] = refused.get(exc.code, 0) + 1
        latencies.append(time.perf_counter() - started)
    results.put((number, began, time.time(), latencies, refused))
    connection.close()


def concurrent_redemptions(label: str, reward_code: str, customer_ids: list[int],
                           clients: int) -> None:
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()
    shares = [customer_ids[n::clients] for n in range(clients)]
    workers = [context.Process(target=redeemer, args=(n, shares[n], reward_code, barrier,
                                                      results)) for n in range(clients)]
    for worker in workers:
        worker.start()
    done = [results.get(timeout=3600) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise SystemExit(f"a client failed (exit {worker.exitcode})")
    began, ended = min(d[1] for d in done), max(d[2] for d in done)
    latencies = sorted(x for d in done for x in d[3])
    refused = {}
    for d in done:
        for code, n in d[4].items():
            refused[code] = refused.get(code, 0) + n
    attempts = len(latencies)
    served = attempts - sum(refused.values())
    p95 = latencies[int(0.95 * (attempts - 1))]
    print(f"{label}: {attempts:,} attempts by {clients} clients in {ended - began:.1f} s = "
          f"{attempts / (ended - began):,.0f} attempts/s, {served:,} redeemed "
          f"({served / (ended - began):,.0f}/s), refused {refused or 0}; latency median "
          f"{statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--redemptions", type=int, default=4000,
                        help="attempts in each of the two redemption runs")
    parser.add_argument("--skip-without", action="store_true",
                        help="skip the import without loyalty (a second database build)")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch database at the end (dropped otherwise)")
    options = parser.parse_args()
    if not options.database_url.startswith("postgres"):
        raise SystemExit("the loyalty benchmark runs on PostgreSQL (--database-url postgres://…)")

    os.environ.update(DATABASE_URL=options.database_url, DEBUG="1",
                      DJANGO_SETTINGS_MODULE="retention.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from loyalty import expiry, receivers, reconcile
    from loyalty.models import Account, Entry, Redemption, Reward
    from retention.mail import outbox
    from retention.sales.models import Customer
    from retention.sales.signals import orders_written

    outbox.messages_queued.receivers = []  # emails are queued, not sent, in the benchmark
    today = timezone.localdate()
    OUT.mkdir(parents=True, exist_ok=True)
    big = OUT / f"loyalty-orders-{options.orders}-{today}.csv"
    refunds = OUT / f"loyalty-refunds-{options.orders}-{today}.csv"
    if not big.exists() or not refunds.exists():
        print(f"writing {big.name} ...", flush=True)
        write_csv(big, rows_of(options.orders, today))
        write_csv(refunds, refunds_of(rows_of(options.orders, today)))
    rows = sum(1 for _ in big.open()) - 1
    refund_rows = sum(1 for _ in refunds.open()) - 1
    customers = max(options.orders // 4, 1)

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    recreate(options.database_url)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    print(f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; PostgreSQL {server}; "
          f"{rows:,} orders for {customers:,} customers (a third silver ×1.25, a third gold "
          f"×1.5), rules: a point per rand, 200 for a bundle", flush=True)

    # (a) Earning on import
    if not options.skip_without:
        seed(customers)
        orders_written.disconnect(receivers.earn_for_written_orders)
        try:
            seconds, phases, summary = timed_import(big)
        finally:
            orders_written.connect(receivers.earn_for_written_orders)
        show_import("import without loyalty", rows, seconds, phases, summary)
        recreate(options.database_url)
    seed(customers)
    statements = []
    seconds, phases, summary = timed_import(big, statements)
    show_import("import with loyalty   ", rows, seconds, phases, summary)
    for spent, sql in statements:
        print(f"      {spent:5.1f} s  {sql}")
    earned = Entry.objects.filter(kind="earn").count()
    pending = Entry.objects.filter(kind="earn", status="pending").count()
    print(f"    earning (the programs phase): {phases.get('programs', 0):.1f} s for {earned:,} "
          f"lots ({pending:,} pending); import less earning {seconds - phases.get('programs', 0):.1f} s",
          flush=True)
    sound = reconcile.is_sound(reconcile.reconcile())
    print(f"    reconciled: {'sound' if sound else 'NOT SOUND'}", flush=True)
    seconds, phases, summary = timed_import(big)
    show_import("the same file again   ", rows, seconds, phases, summary)
    statements = []
    seconds, phases, summary = timed_import(refunds, statements)
    show_import("1 % of paid refunded  ", refund_rows, seconds, phases, summary)
    for spent, sql in statements:
        print(f"      {spent:5.1f} s  {sql}")
    print(f"    {Entry.objects.filter(kind='reverse').count():,} lots reversed or cancelled",
          flush=True)
    began = time.perf_counter()
    released = expiry.release(today + timedelta(days=14))
    print(f"expiry.release (all pending lots due): {released:,} lots in "
          f"{time.perf_counter() - began:.1f} s", flush=True)

    # (b) Reconciliation
    top_up_accounts(options.accounts)
    print(f"rows: {counts()}", flush=True)
    for run in ("cold", "warm"):
        began = time.perf_counter()
        report = reconcile.reconcile()
        spent = time.perf_counter() - began
        print(f"reconcile ({run}): {report['accounts']:,} accounts, {report['entries']:,} "
              f"entries in {spent:.1f} s; mismatched {report['mismatched_accounts']}, negative "
              f"{report['negative_lots']}, inconsistent {report['inconsistent_lots']}; liability "
              f"{report['liability']['points']:,} points", flush=True)

    # (c) Redemptions
    Reward.objects.create(code="bench-open", title="Ten off", kind=Reward.Kind.AMOUNT_OFF,
                          value=10, points=100)
    stock = options.redemptions // 2
    Reward.objects.create(code="bench-stock", title="Limited", kind=Reward.Kind.AMOUNT_OFF,
                          value=10, points=100, stock=stock)
    pool = list(Customer.objects.filter(external_id__startswith="acct-").order_by("pk")
                .values_list("pk", flat=True)[:2 * options.redemptions])
    if len(pool) < 2 * options.redemptions:
        raise SystemExit("not enough accounts for the redemptions: raise --accounts")
    before = Account.objects.filter(customer_id__in=pool).count()
    assert before == len(pool)
    concurrent_redemptions("redeem, distinct customers", "bench-open",
                           pool[:options.redemptions], options.clients)
    concurrent_redemptions(f"redeem, one reward with stock {stock:,}", "bench-stock",
                           pool[options.redemptions:], options.clients)
    left = Reward.objects.get(code="bench-stock").stock
    taken = Redemption.objects.filter(reward__code="bench-stock").count()
    report = reconcile.reconcile()
    print(f"stock left {left}, redeemed {taken:,} of {stock:,} (oversold: "
          f"{'YES' if taken > stock or left < 0 else 'no'}); reconciled "
          f"{'sound' if reconcile.is_sound(report) else 'NOT SOUND'}", flush=True)
    if not options.keep:
        drop(options.database_url)


if __name__ == "__main__":
    main()
