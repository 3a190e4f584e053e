"""The outbox: every email stored first, sent once, only where consent, budget and hours allow.

What the outbox guarantees, step by step (retention/mail/outbox.py):
- queueing is exactly once per deduplication key;
- up to the hand-over to the mail server, delivery is *at least once*: a queued or
  claimed message is sent later if a worker stops, a server is down or a task dies;
- from the hand-over on, delivery is *at most once*: a message whose worker stopped
  during the hand-over is marked failed ("delivery unknown") and never sent again by
  itself. Together: no message is ever delivered twice, and none disappears silently.
"""

import smtplib
from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from retention.mail import consent, outbox
from retention.mail.models import ConsentRecord, OutboxMessage, Suppression, Topic
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
Status, Kind = OutboxMessage.Status, OutboxMessage.Kind
NOON = datetime(2025, 8, 12, 12, tzinfo=UTC)  # a Tuesday, outside the quiet hours


@pytest.fixture(autouse=True)
def business_hours(settings):
    settings.TIME_ZONE = "UTC"
    settings.RETENTION_QUIET_HOURS = (datetime.strptime("21:00", "%H:%M").time(),
                                      datetime.strptime("08:00", "%H:%M").time())
    settings.RETENTION_CONTACT_BUDGET_MESSAGES = 2
    settings.RETENTION_CONTACT_BUDGET_DAYS = 7
    settings.SITE_URL = "https://courses.example.com"
    with time_machine.travel(NOON, tick=False):
        yield


def offer(customer, key="offer-1", **options):
    return outbox.queue(customer, template="email/winback", purpose="winback",
                        kind=Kind.MARKETING, topic=Topic.OFFERS, key=key, **options)


def fresh_link(customer, key="link-1", **options):
    return outbox.queue(customer, template="email/fresh_link", purpose="fresh_link",
                        kind=Kind.TRANSACTIONAL, key=key,
                        context={"account_url": "https://courses.example.com/c/x/"}, **options)


def survey(customer, key="survey-1"):
    return outbox.queue(customer, template="email/survey_invitation", purpose="nps",
                        kind=Kind.SURVEY, topic=Topic.SURVEYS, key=key)


@pytest.fixture
def consenting():
    return CustomerFactory(name="Thandi", email="thandi@example.com", marketing_consent=True)


def status_of(message) -> tuple[str, str]:
    message.refresh_from_db()
    return message.status, message.reason


# Queueing ----------------------------------------------------------------------------------


def test_the_same_email_queued_twice_is_one_message(consenting):
    first = offer(consenting)
    second = offer(consenting)

    assert first.pk == second.pk and OutboxMessage.objects.count() == 1


def test_a_message_is_rendered_with_both_parts_and_the_unsubscribe_headers(consenting):
    message = offer(consenting)

    assert message.subject == "Thandi, we kept your place"
    assert "Hello Thandi" in message.body_text and "Hello Thandi" in message.body_html
    assert "Unsubscribe: https://courses.example.com/u/" in message.body_text
    assert message.headers["List-Unsubscribe"].startswith("<https://courses.example.com/u/")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Links in the HTML part go through the click redirect, except the opt-out ones.
    assert 'href="https://courses.example.com/r/' in message.body_html
    assert message.headers["List-Unsubscribe"][1:-1] in message.body_html


def test_transactional_email_has_no_unsubscribe_header(consenting):
    message = fresh_link(consenting)

    assert "List-Unsubscribe" not in message.headers and "/r/" not in message.body_html


def test_a_customer_without_an_address_is_suppressed_not_dropped():
    message = fresh_link(CustomerFactory(email=""))

    assert status_of(message) == (Status.SUPPRESSED, "no email address")


def test_a_kind_and_topic_that_do_not_fit_are_refused(consenting):
    with pytest.raises(outbox.OutboxError, match="needs one"):
        outbox.queue(consenting, template="email/winback", purpose="x", kind=Kind.MARKETING,
                     key="k")


# Sending -----------------------------------------------------------------------------------


def test_a_due_message_is_sent_once_even_when_the_task_runs_twice(consenting, mailoutbox):
    message = offer(consenting)

    assert outbox.send_due() == {Status.SENT: 1}
    assert outbox.send_due() == {}

    assert status_of(message) == (Status.SENT, "")
    assert len(mailoutbox) == 1
    sent = mailoutbox[0]
    assert sent.to == ["thandi@example.com"] and sent.extra_headers["List-Unsubscribe-Post"]
    assert sent.alternatives[0][1] == "text/html"


def test_higher_priority_goes_first(consenting, mailoutbox):
    offer(consenting, key="low", priority=0)
    fresh_link(consenting, key="high", priority=10)

    outbox.send_due(batch=1)

    assert mailoutbox[0].subject.startswith("Your link")


def test_marketing_needs_consent_and_the_topic(mailoutbox):
    no_consent = CustomerFactory(marketing_consent=False)
    opted_out = CustomerFactory(marketing_consent=True)
    consent.unsubscribe(opted_out, Topic.OFFERS, method=ConsentRecord.Method.UNSUBSCRIBE)
    messages = [offer(no_consent, key="a"), offer(opted_out, key="b")]

    outbox.send_due()

    assert [status_of(m) for m in messages] == [
        (Status.SUPPRESSED, "no marketing consent"),
        (Status.SUPPRESSED, "unsubscribed from offers and reminders")]
    assert mailoutbox == []


def test_surveys_go_unless_turned_off_and_transactional_mail_always(mailoutbox):
    customer = CustomerFactory(marketing_consent=False)
    first = survey(customer, key="s1")
    link = fresh_link(customer)
    outbox.send_due()
    consent.unsubscribe(customer, Topic.SURVEYS, method=ConsentRecord.Method.ONE_CLICK)
    second = survey(customer, key="s2")
    outbox.send_due()

    assert [status_of(m)[0] for m in (first, link, second)] == [
        Status.SENT, Status.SENT, Status.SUPPRESSED]
    assert len(mailoutbox) == 2


def test_a_pause_stops_all_but_transactional_mail_until_it_ends(consenting, mailoutbox):
    consent.pause(consenting, NOON + timedelta(days=7), method=ConsentRecord.Method.PREFERENCES)
    paused = offer(consenting)
    link = fresh_link(consenting)

    outbox.send_due()

    assert status_of(paused) == (Status.SUPPRESSED, "paused until 2025-08-19")
    assert status_of(link)[0] == Status.SENT


def test_a_bounced_address_gets_nothing(consenting, mailoutbox):
    Suppression.objects.create(email="thandi@example.com", reason=Suppression.Reason.BOUNCE)
    message = fresh_link(consenting)

    outbox.send_due()

    assert status_of(message) == (Status.SUPPRESSED, "address bounced")
    assert mailoutbox == []


def test_quiet_hours_hold_non_transactional_mail_until_morning(consenting, mailoutbox):
    with time_machine.travel(datetime(2025, 8, 12, 22, 30, tzinfo=UTC), tick=False):
        held = offer(consenting)
        link = fresh_link(consenting)
        outbox.send_due()

        assert status_of(held) == (Status.QUEUED, "waiting: quiet hours")
        held.refresh_from_db()
        assert held.not_before == datetime(2025, 8, 13, 8, tzinfo=UTC)
        assert status_of(link)[0] == Status.SENT
    with time_machine.travel(datetime(2025, 8, 13, 8, 1, tzinfo=UTC), tick=False):
        outbox.send_due()
    assert status_of(held)[0] == Status.SENT


def test_the_budget_holds_the_third_message_and_says_why(consenting, mailoutbox):
    first, second = offer(consenting, key="1"), survey(consenting, key="2")
    outbox.send_due()
    third = offer(consenting, key="3")
    expiring = offer(consenting, key="4", expires_at=NOON + timedelta(days=2))
    link = fresh_link(consenting)  # transactional mail does not spend the budget

    outbox.send_due()

    assert status_of(first)[0] == status_of(second)[0] == Status.SENT
    assert status_of(third) == (Status.QUEUED, "waiting: budget 2 per 7 days reached")
    third.refresh_from_db()
    assert third.not_before == NOON + timedelta(days=7)
    assert status_of(expiring) == (Status.SUPPRESSED, "budget 2 per 7 days reached")
    assert status_of(link)[0] == Status.SENT
    with time_machine.travel(NOON + timedelta(days=7, minutes=1), tick=False):
        outbox.send_due()
    assert status_of(third)[0] == Status.SENT
    assert len(mailoutbox) == 4


def test_an_expired_message_is_not_sent(consenting, mailoutbox):
    message = fresh_link(consenting, expires_at=NOON + timedelta(hours=1))

    with time_machine.travel(NOON + timedelta(hours=2), tick=False):
        outbox.send_due()

    assert status_of(message) == (Status.EXPIRED, "not sent before it expired")


# Failures and the sweep ----------------------------------------------------------------------


def test_a_server_that_is_down_puts_the_batch_back(consenting):
    message = fresh_link(consenting)

    with mock.patch("django.core.mail.backends.locmem.EmailBackend.open",
                    side_effect=ConnectionRefusedError("refused")):
        assert outbox.send_due() == {Status.QUEUED: 1}

    message.refresh_from_db()
    assert message.status == Status.QUEUED and message.attempts == 0
    assert message.reason.startswith("waiting: the mail server could not be reached")


def test_a_dropped_connection_is_retried_with_backoff_then_fails(consenting, settings, mailoutbox):
    settings.RETENTION_OUTBOX_MAX_ATTEMPTS = 2
    message = fresh_link(consenting)
    broken = smtplib.SMTPServerDisconnected("gone")

    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages",
                    side_effect=broken):
        outbox.send_due()
        message.refresh_from_db()
        assert (message.status, message.attempts) == (Status.QUEUED, 1)
        assert message.not_before == NOON + timedelta(minutes=2)
        with time_machine.travel(NOON + timedelta(minutes=3), tick=False):
            outbox.send_due()

    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.FAILED, 2)
    assert "SMTPServerDisconnected" in message.reason and mailoutbox == []


def test_an_unknown_recipient_fails_for_good_and_suppresses_the_address(consenting):
    message = fresh_link(consenting)
    refused = smtplib.SMTPRecipientsRefused({"thandi@example.com": (550, b"no such user")})

    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages",
                    side_effect=refused):
        outbox.send_due()

    assert status_of(message)[0] == Status.FAILED
    assert Suppression.objects.get().email == "thandi@example.com"


def test_the_sweep_requeues_claimed_messages_and_never_resends_one_being_handed_over(consenting):
    claimed, handed_over = fresh_link(consenting, key="a"), fresh_link(consenting, key="b")
    long_ago = NOON - timedelta(hours=1)
    OutboxMessage.objects.filter(pk=claimed.pk).update(status=Status.CLAIMED, claimed_at=long_ago,
                                                       claimed_by="dead-worker")
    OutboxMessage.objects.filter(pk=handed_over.pk).update(
        status=Status.SENDING, claimed_at=long_ago, sending_at=long_ago, claimed_by="dead-worker")

    assert outbox.sweep() == {"requeued": 1, "failed": 1}

    assert status_of(claimed)[0] == Status.QUEUED  # nothing was sent: at least once
    status, reason = status_of(handed_over)  # may have arrived: at most once
    assert status == Status.FAILED and reason.startswith("delivery unknown")


def test_a_worker_that_lost_its_claim_sends_nothing(consenting, mailoutbox):
    message = fresh_link(consenting)
    OutboxMessage.objects.filter(pk=message.pk).update(status=Status.CLAIMED,
                                                       claimed_by="someone-else")
    outcomes = Counter()

    outbox._hand_over_group([message], "me", mock.Mock(), outcomes)

    assert outcomes == {"lost claim": 1}
    assert status_of(message)[0] == Status.CLAIMED and mailoutbox == []


def test_a_group_is_marked_sending_then_sent_in_two_writes(consenting, mailoutbox, settings,
                                                           django_assert_num_queries):
    settings.RETENTION_OUTBOX_HANDOVER_GROUP = 10
    for n in range(3):
        fresh_link(consenting, key=f"k{n}")
    _outcomes, ready = outbox._claim(10, "me", timezone.now())
    outcomes = Counter()

    # mark sending, mark the accepted ones sent
    with django_assert_num_queries(2):
        outbox._hand_over_group(ready, "me", mock.Mock(), outcomes)

    assert outcomes == {Status.SENT: 3}
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {Status.SENT}


def test_staff_can_resend_a_failed_message_only(consenting, mailoutbox):
    failed, sent = fresh_link(consenting, key="a"), fresh_link(consenting, key="b")
    OutboxMessage.objects.filter(pk=failed.pk).update(status=Status.FAILED, reason="x")
    OutboxMessage.objects.filter(pk=sent.pk).update(status=Status.SENT)

    assert outbox.resend(failed) and not outbox.resend(sent)
    outbox.send_due()

    assert status_of(failed)[0] == Status.SENT and len(mailoutbox) == 1


def test_old_finished_messages_are_cleaned_up(consenting, settings):
    settings.RETENTION_OUTBOX_KEEP_DAYS = 30
    old, queued = fresh_link(consenting, key="old"), fresh_link(consenting, key="queued")
    OutboxMessage.objects.filter(pk=old.pk).update(status=Status.SENT,
                                                   created_at=NOON - timedelta(days=31))
    OutboxMessage.objects.filter(pk=queued.pk).update(created_at=NOON - timedelta(days=31))

    assert outbox.cleanup() == 1
    assert list(OutboxMessage.objects.values_list("dedup_key", flat=True)) == ["queued"]


def test_clicks_are_counted_per_message_and_per_day(consenting):
    message = offer(consenting)
    outbox.send_due()

    outbox.record_click(str(message.public_id), "https://courses.example.com/")

    message.refresh_from_db()
    assert message.clicks == 1
    (today,) = outbox.daily_counts()
    assert (today["day"], today["sent"], today["clicked"]) == (NOON.date(), 1, 1)


def test_a_batch_is_taken_and_decided_in_a_few_queries(django_assert_num_queries):
    customers = CustomerFactory.create_batch(5, marketing_consent=True)
    for n, customer in enumerate(customers):
        offer(customer, key=f"offer-{n}")
        fresh_link(customer, key=f"link-{n}")

    # savepoint, the due messages, their customers (locked), suppressions, preferences,
    # the budgets, one update per decision, the ready messages, release
    with django_assert_num_queries(9):
        outcomes, ready = outbox._claim(50, "me", timezone.now())

    assert len(ready) == 10 and outcomes == {}
