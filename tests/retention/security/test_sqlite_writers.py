"""On the embedded default (a SQLite file), writers at once queue instead of failing."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEADER = "order_id,customer_id,ordered_at,amount,email,name,status,items,coupon_code,currency\n"


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory):
    """A migrated SQLite file, as `make run` leaves one, and the environment that uses it."""
    folder = tmp_path_factory.mktemp("sqlite")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "retention.settings", "DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{folder / 'retention.sqlite3'}",
           "RETENTION_VAR_DIR": str(folder)}
    env.pop("CELERY_BROKER_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=env, check=True, timeout=300)
    return folder, env


def orders_file(folder: Path, name: str, first: int, count: int) -> Path:
    path = folder / name
    path.write_text(HEADER + "".join(
        f"o{n},c{n % 500},2025-01-{1 + n % 28:02d}T10:00:00Z,10.00,c{n % 500}@example.com,,,,,\n"
        for n in range(first, first + count)))
    return path


def test_two_imports_started_together_both_finish(sqlite_file):
    folder, env = sqlite_file
    files = [orders_file(folder, "a.csv", 0, 20_000), orders_file(folder, "b.csv", 20_000, 20_000)]
    running = [subprocess.Popen([sys.executable, "manage.py", "import_orders", str(path)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for path in files]
    results = [(process.wait(timeout=300), *process.communicate()) for process in running]

    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err and "database is locked" not in err
        assert "created: 20000" in out
    count = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from retention.sales.models "
         "import Order; print(Order.objects.count())"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert count.stdout.strip() == "40000"


def test_ten_fresh_link_requests_at_once_get_answers_not_server_errors(sqlite_file):
    folder, env = sqlite_file
    script = textwrap.dedent("""
        import threading
        import django
        django.setup()
        from django.test import Client
        from retention.sales.models import Customer
        Customer.objects.get_or_create(external_id="known", defaults={"email": "known@example.com"})
        barrier, codes = threading.Barrier(10), []
        def ask():
            barrier.wait()
            codes.append(Client().post("/link/", {"email": "known@example.com"}).status_code)
        threads = [threading.Thread(target=ask) for _ in range(10)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(sorted(codes))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={**env, "ALLOWED_HOSTS": "testserver",
                               "RETENTION_LINK_REQUESTS_PER_HOUR": "3"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([200] * 3 + [429] * 7), done.stderr[-3000:]
