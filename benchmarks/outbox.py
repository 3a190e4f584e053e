"""Benchmark the outbox: queue 100,000 emails and send them with two real Celery workers to an
SMTP server on loopback; report messages per second and duplicates.

    python benchmarks/outbox.py [--messages 100000] [--workers 2] [--database-url URL]
                                [--broker-url redis://127.0.0.1:6379/14]

Drops and recreates the database (default postgres://root@127.0.0.1:5432/retention_outbox_bench),
writes one customer per message (half with marketing consent), then:

1. times `outbox.queue` itself on 2,000 messages (rendering both parts and the links);
2. stores the rest as the same rendered messages with their own keys and Message-IDs (bulk,
   so that the benchmark does not spend minutes rendering): half transactional, half
   marketing, every one through the full decision (consent, suppression, quiet hours off,
   the contact budget) when it is sent;
3. starts an aiosmtpd server in a child process that records each message's Message-ID, and
   N `celery worker` processes (solo pool) on a private queue, and sends them the work;
4. reports the time from the first task to the last message marked sent, messages per
   second, and Message-IDs received more than once (the aim is 0).

Not part of `make test`. Needs Redis and PostgreSQL (the CI machine has both).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://root@127.0.0.1:5432/retention_outbox_bench"
SMTP_SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller

class Record:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)
    async def handle_DATA(self, server, session, envelope):
        # The Message-ID header, unfolded (a long one continues on indented lines).
        content = envelope.content
        start = content.lower().find(b"\\nmessage-id:") + 12
        end = start
        while True:
            end = content.find(b"\\r\\n", end)
            if content[end + 2:end + 3] not in (b" ", b"\\t"):
                break
            end += 2
        self.out.write(b" ".join(content[start:end].split()).decode() + "\\n")
        return "250 OK"

controller = Controller(Record(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
asyncio.get_event_loop().run_forever()
"""


def recreate(url: str) -> None:
    name, admin = url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    options = parser.parse_args()

    recreate(options.database_url)
    port = 2500 + os.getpid() % 1000
    env = {**os.environ, "DATABASE_URL": options.database_url, "DEBUG": "1",
           "CELERY_BROKER_URL": options.broker_url, "EMAIL_HOST": "127.0.0.1",
           "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "0", "RETENTION_QUIET_HOURS": "",
           "DJANGO_SETTINGS_MODULE": "retention.settings"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Max, Min

    from retention import tasks
    from retention.celery import app
    from retention.mail import outbox
    from retention.mail.models import OutboxMessage, Topic
    from retention.sales.models import Customer

    count = options.messages
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO retention_customer (external_id, email, name, customer_type,
                   organisation_name, sector, marketing_consent, acquisition_source, order_count,
                   total_spent, link_generation, created_at, updated_at)
               SELECT 'bench-' || g, 'c' || g || '@example.com', 'Customer ' || g, 'individual',
                      '', '', g %% 2 = 0, '', 0, 0, 0, now(), now()
               FROM generate_series(1, %s) g""", [count])
    customers = list(Customer.objects.order_by("pk").only("pk", "email", "name",
                                                          "marketing_consent", "link_generation"))
    outbox.messages_queued.receivers = []  # the benchmark starts the workers itself

    def queue(customer, n):
        if customer.marketing_consent:
            return outbox.queue(customer, template="email/winback", purpose="winback",
                                kind="marketing", topic=Topic.OFFERS, key=f"bench-{n}")
        return outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                            kind="transactional", key=f"bench-{n}",
                            context={"account_url": "http://127.0.0.1:8000/c/x/"})

    sample = min(2000, count)
    began = time.perf_counter()
    templates = {}
    for n, customer in enumerate(customers[:sample]):
        templates[customer.marketing_consent] = queue(customer, n)
    queued = time.perf_counter() - began
    print(f"machine: {os.cpu_count()} cores; outbox.queue (rendered, stored): "
          f"{sample / queued:,.0f} messages/s over {sample:,}", flush=True)
    rows = []
    for n, customer in enumerate(customers[sample:], start=sample):
        model = templates[customer.marketing_consent]
        public_id = uuid.uuid4()
        rows.append(OutboxMessage(
            public_id=public_id, customer=customer, to_email=customer.email, kind=model.kind,
            topic=model.topic, purpose=model.purpose, template=model.template,
            subject=model.subject, body_text=model.body_text, body_html=model.body_html,
            headers={**model.headers, "Message-ID": f"<{public_id}@bench>"},
            dedup_key=f"bench-{n}", not_before=model.not_before))
        if len(rows) == 5000:
            OutboxMessage.objects.bulk_create(rows)
            rows = []
    OutboxMessage.objects.bulk_create(rows)
    print(f"{OutboxMessage.objects.filter(status='queued').count():,} messages queued", flush=True)
    connection.close()

    with tempfile.TemporaryDirectory() as folder:
        received = Path(folder) / "received.txt"
        smtp = subprocess.Popen([sys.executable, "-c", SMTP_SERVER, str(port), str(received)],
                                stdout=subprocess.PIPE, text=True)
        assert smtp.stdout.readline().strip() == "ready"
        queue_name = f"bench-{uuid.uuid4().hex[:8]}"
        workers = [subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "retention", "worker", "--pool=solo",
             "--queues", queue_name, "--without-gossip", "--without-mingle",
             "--loglevel=WARNING", "-n", f"bench{n}@%h"], cwd=ROOT, env=env)
            for n in range(options.workers)]
        try:
            time.sleep(4)  # let the workers connect
            app.conf.task_always_eager = False
            began = time.perf_counter()
            for _ in range(options.workers * 4):
                tasks.send_outbox.apply_async(kwargs={"batch": 200, "rounds": 1000},
                                              queue=queue_name)
            while OutboxMessage.objects.filter(
                    status__in=["queued", "claimed", "sending"]).exists():
                time.sleep(2)  # each look is a scan of the outbox: not too often
                if time.perf_counter() - began > 3600:
                    raise SystemExit("not drained within an hour")
            spent = time.perf_counter() - began
            span = OutboxMessage.objects.filter(status="sent").aggregate(
                first=Min("sending_at"), last=Max("sent_at"))
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
            time.sleep(1)
            smtp.terminate()
        ids = Counter(line.strip() for line in received.read_text().splitlines() if line.strip())
    statuses = Counter(OutboxMessage.objects.values_list("status", flat=True))
    sending = (span["last"] - span["first"]).total_seconds()
    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    print(f"{options.workers} workers: {statuses['sent']:,} sent in {spent:.1f} s "
          f"({statuses['sent'] / spent:,.0f} messages/s; {statuses['sent'] / sending:,.0f}/s "
          f"from the first hand-over to the last); statuses {dict(statuses)}; "
          f"{len(ids):,} distinct messages received, {duplicates} duplicates", flush=True)


if __name__ == "__main__":
    main()
