"""Benchmark import_orders: rows per second and peak memory, on a fresh database.

    python benchmarks/import_orders.py [--rows 1000000] [--database-url postgres://root@127.0.0.1:5432/retention_bench]

Generates a deterministic CSV (about 1 row in 5 without an order_id, 1 in 3
with two items, a few refunds), creates the database afresh, migrates, loads a
small catalogue, then times three runs of `manage.py import_orders` in a child
process: the first import, the same file again (everything unchanged), and a
tenth of the file (to show that peak memory does not grow with the file).
Peak memory is the child's maximum resident set size. Not part of `make test`.
"""

import argparse
import csv
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
CODES = [f"C{n:03d}" for n in range(30)] + [f"B{n}" for n in range(5)]


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    customers = max(rows // 4, 1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "ordered_at", "amount", "email", "name",
                         "status", "items", "coupon_code", "currency"])
        for n in range(rows):
            customer = rng.randrange(customers)
            day = 1 + rng.randrange(730)
            items = "|".join(rng.sample(CODES, 2 if rng.random() < 0.33 else 1))
            writer.writerow([
                "" if n % 5 == 0 else f"ord-{n}",
                f"cust-{customer}",
                f"2024-{1 + day % 12:02d}-{1 + day % 28:02d}T{rng.randrange(24):02d}:"
                f"{rng.randrange(60):02d}:00" + ("+02:00" if n % 2 else ""),
                f"{rng.randrange(0, 500000) / 100:.2f}",
                f"c{customer}@example.com",
                f"Customer {customer}",
                "refunded" if rng.random() < 0.03 else "paid",
                items,
                "SPRING" if rng.random() < 0.1 else "",
                "ZAR",
            ])


def manage(env, *args, capture=True):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=capture, text=True)


def timed_import(env, path: Path) -> tuple[float, float, str]:
    """Run one import in a fresh child; return (seconds, peak MiB of that child, summary)."""
    code = (
        "import resource, subprocess, sys, time;"
        "t=time.perf_counter();"
        "p=subprocess.run([sys.executable,'manage.py','import_orders',sys.argv[1],'-v','2'],"
        "capture_output=True,text=True);"
        "d=time.perf_counter()-t;"
        "print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024, sep='\\t');"
        "print(p.stdout.strip() or p.stderr[-2000:])"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True)
    first, summary = result.stdout.split("\n", 1)
    seconds, peak = map(float, first.split("\t"))
    return seconds, peak, summary.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/retention_bench")
    options = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    big, small = OUT / f"orders-{options.rows}.csv", OUT / f"orders-{options.rows // 10}.csv"
    for path, rows in ((big, options.rows), (small, options.rows // 10)):
        if not path.exists():
            print(f"writing {path.name} ...", flush=True)
            write_csv(path, rows)

    env = {**os.environ, "DATABASE_URL": options.database_url, "DEBUG": "1"}
    if options.database_url.startswith("postgres"):
        name = options.database_url.rsplit("/", 1)[1]
        admin = options.database_url.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    manage(env, "migrate", "-v", "0")
    setup = (
        "from datetime import date; from retention.models import Course, Bundle;"
        f"codes={CODES!r};"
        "Course.objects.bulk_create([Course(code=c,title=c,price=100+i,launched_on=date(2023,1,1),"
        "category='bench') for i,c in enumerate(codes) if c.startswith('C')]);"
        "Bundle.objects.bulk_create([Bundle(code=c,title=c,price=300,launched_on=date(2023,1,1))"
        " for c in codes if c.startswith('B')])"
    )
    manage(env, "shell", "-v", "0", "-c", setup)

    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"database: {options.database_url.split('://')[0]}")
    runs = (("first import", big), ("same file again", big), ("a tenth, overlapping", small))
    for label, path in runs:
        rows = sum(1 for _ in path.open()) - 1
        seconds, peak, summary = timed_import(env, path)
        print(f"{label:>18}: {rows:>9,} rows in {seconds:6.1f} s = {rows / seconds:>9,.0f} rows/s, "
              f"peak memory {peak:6.0f} MiB\n{summary}", flush=True)


if __name__ == "__main__":
    main()
