"""Workers racing over one outbox, on PostgreSQL (where SELECT … FOR UPDATE SKIP LOCKED and
row locks mean something): every message is delivered once, and budgets hold."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from retention.mail import outbox
from retention.mail.models import OutboxMessage, Topic
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="concurrent workers need PostgreSQL's row locks"),
]


@pytest.fixture(autouse=True)
def workers_only(monkeypatch):
    """Queue without waking a worker after commit (tasks run in-process in tests): here the
    test's own threads are the workers."""
    monkeypatch.setattr(outbox.messages_queued, "receivers", [])


def in_threads(count: int, work) -> list:
    """Run `work(n)` in `count` threads at once, each on its own connection."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(n):
        try:
            start.wait()
            results[n] = work(n)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_two_workers_draining_one_queue_deliver_each_message_once(mailoutbox, settings):
    settings.RETENTION_QUIET_HOURS = None
    customers = CustomerFactory.create_batch(40)
    for customer in customers:
        for n in range(3):
            outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                         kind="transactional", key=f"{customer.pk}:{n}")

    def drain(n):
        done = Counter()
        while outcomes := outbox.send_due(batch=7, worker=f"worker-{n}"):
            done.update(outcomes)
        return done

    results = in_threads(2, drain)

    assert sum(result["sent"] for result in results) == 120
    assert all(result["sent"] > 0 for result in results)  # both took part
    delivered = Counter(message.extra_headers["Message-ID"] for message in mailoutbox)
    assert len(delivered) == 120 and set(delivered.values()) == {1}
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    claimed_by = Counter(OutboxMessage.objects.values_list("claimed_by", flat=True))
    assert set(claimed_by) == {"worker-0", "worker-1"}


def test_two_workers_cannot_overspend_one_customers_budget(mailoutbox, settings):
    settings.RETENTION_QUIET_HOURS = None
    settings.RETENTION_CONTACT_BUDGET_MESSAGES = 2
    customer = CustomerFactory(marketing_consent=True)
    for n in range(6):
        outbox.queue(customer, template="email/winback", purpose="winback", kind="marketing",
                     topic=Topic.OFFERS, key=f"offer-{n}")
    # Both workers take a batch at the same moment; each batch holds messages for her.
    in_threads(2, lambda n: outbox._claim(3, f"w{n}", timezone.now()))

    statuses = Counter(OutboxMessage.objects.values_list("status", flat=True))
    assert statuses == {"claimed": 2, "queued": 4}
    assert set(OutboxMessage.objects.filter(status="queued").values_list("reason", flat=True)) == {
        "waiting: budget 2 per 7 days reached"}


def test_the_same_email_queued_at_once_from_two_places_is_one_message():
    customer = CustomerFactory()

    ids = in_threads(2, lambda n: outbox.queue(
        customer, template="email/fresh_link", purpose="fresh_link", kind="transactional",
        key="the-same-one").pk)

    assert ids[0] == ids[1] and OutboxMessage.objects.count() == 1
