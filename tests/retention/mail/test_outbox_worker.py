"""A real worker killed in the middle of a batch: nothing is delivered twice, nothing is lost
without a trace. Runs in CI's pass with a real broker (CELERY_BROKER_URL) on PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from retention import tasks
from retention.celery import app
from retention.mail import outbox
from retention.mail.models import OutboxMessage
from tests.conftest import SMTPInbox, free_port
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("CELERY_BROKER_URL"),
                       reason="set CELERY_BROKER_URL to run the real-worker tests"),
]


@pytest.fixture
def slow_smtp():
    """A loopback SMTP server that takes 50 ms a message, so a batch takes a while."""
    from aiosmtpd.controller import Controller

    inbox = SMTPInbox()
    inbox.delay = 0.05
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def start_worker(queue: str, port: int) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "retention.settings", "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "0",
        "RETENTION_QUIET_HOURS": "", "SITE_URL": "http://testserver",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "retention", "worker", "--pool=solo",
         "--queues", queue, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_batch_delivers_nothing_twice(slow_smtp, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker needs a database it can share")
    inbox, port = slow_smtp
    monkeypatch.setattr(outbox.messages_queued, "receivers", [])
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    for n, customer in enumerate(CustomerFactory.create_batch(40)):
        outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                     kind="transactional", key=f"kill-test-{n}")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    first = start_worker(queue, port)
    try:
        tasks.send_outbox.apply_async(kwargs={"batch": 40}, queue=queue)
        # The worker hands over groups of 10 (RETENTION_OUTBOX_HANDOVER_GROUP): kill it in
        # the middle of the second one.
        assert wait_for(lambda: len(inbox.messages) >= 15), "the worker never started sending"
        first.send_signal(signal.SIGKILL)  # mid-batch, without any chance to clean up
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    delivered_before = len(inbox.messages)
    stuck = Counter(OutboxMessage.objects.values_list("status", flat=True))
    assert stuck["claimed"] > 0 and stuck["sent"] >= 10  # it died holding a batch

    # The sweep runs once the rows are stale: claimed ones go back to the queue, a message
    # caught in the hand-over is marked failed, delivery unknown, and never resent.
    settings.RETENTION_OUTBOX_STALE_SECONDS = 0
    swept = outbox.sweep()
    assert 0 < swept["failed"] <= 10 and swept["requeued"] == stuck["claimed"]
    second = start_worker(queue, port)  # the killed task is redelivered to it (acks late)
    try:
        tasks.send_outbox.apply_async(kwargs={"batch": 40}, queue=queue)
        assert wait_for(lambda: not OutboxMessage.objects.filter(
            status__in=["queued", "claimed", "sending"]).exists(), timeout=90)
    finally:
        second.terminate()
        second.wait(timeout=20)

    ids = Counter(str(message["Message-ID"]).strip() for message in inbox.messages)
    assert set(ids.values()) == {1}, "a message arrived twice"
    final = Counter(OutboxMessage.objects.values_list("status", flat=True))
    assert final["sent"] + final["failed"] == 40 and final["failed"] == swept["failed"]
    sent_ids = set(OutboxMessage.objects.filter(status="sent").values_list("headers__Message-ID",
                                                                          flat=True))
    assert sent_ids <= set(ids)  # every message marked sent arrived
    assert len(ids) - len(sent_ids) <= final["failed"]  # at most the unknown ones arrived unmarked
    assert len(inbox.messages) > delivered_before
