"""The email outbox: every email to a customer is a stored message before it is sent.

`queue(...)` renders the message (subject, text and HTML, headers) and stores it in the
caller's transaction, under a deduplication key that is unique in the database: queueing
the same logical email twice gives one message. After commit it asks a worker to send.
`send_due()` is what workers run: it claims due messages, decides each one (consent,
suppression, expiry, quiet hours, the contact budget) and hands it to Django's email
backend (SMTP, files, or an email service through django-anymail).

A message moves queued -> claimed -> sending -> sent. The two middle steps are what make
delivery safe when workers race, die or run a task twice:

- **claimed** (a worker took it and decided it may go, spending the customer's budget;
  `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never take the same
  row). Nothing has been sent: if the worker dies, the sweep puts the message back in
  the queue. Up to here delivery is **at least once**: a queued message is retried until
  it is sent, fails for good, expires or is suppressed.
- **sending** is written, and committed, just before the message is handed to the mail
  server (for a group of RETENTION_OUTBOX_HANDOVER_GROUP messages at a time, so that a
  commit is not paid per message). From here delivery is **at most once**: a message
  found still "sending" by the sweep (its worker died during the hand-over) is marked
  failed, "delivery unknown", and never sent again automatically; staff can resend it.
  So no duplicate is ever delivered, and a message is lost only if a worker dies while
  handing over its group, and then it is shown as failed, not silently dropped.
- **sent** is written after the server accepted the group's messages.

Everything that talks to the network runs outside a transaction; decisions that depend
on what was just read (the budget) hold the customer's row locked until they commit.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import uuid
from collections import Counter
from datetime import datetime, timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.utils import timezone

from retention.mail import consent, contact, links
from retention.mail.models import ContactPreferences, EmailClick, OutboxMessage, Suppression
from retention.sales.models import Customer

log = logging.getLogger(__name__)
Status, Kind = OutboxMessage.Status, OutboxMessage.Kind
FINISHED = [Status.SENT, Status.FAILED, Status.SUPPRESSED, Status.EXPIRED]
TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, smtplib.SMTPHeloError,
             socket.timeout, ConnectionError, TimeoutError)
HREF = re.compile(r'href="(https?://[^"]+)"')


# Sent after the commit of a transaction that queued a message that may go. What sends
# is connected to it (retention/tasks.py starts the send task), so the outbox knows nothing
# of Celery and a test or a benchmark can queue without waking anyone (disconnect it).
messages_queued = Signal()


class OutboxError(Exception):
    """A message cannot be queued as asked (the message says why)."""


# Queueing -------------------------------------------------------------------------------------


def queue(customer: Customer | None, *, template: str, purpose: str, kind: str, key: str,
          context: dict | None = None, topic: str = "", priority: int = 0,
          to_email: str | None = None, not_before: datetime | None = None,
          expires_at: datetime | None = None) -> OutboxMessage:
    """Store an email to `customer` (or to `to_email`, e.g. staff), once per `key`.

    Renders `template` (.subject.txt, .txt and .html) with `context` plus the customer and
    their links. A repeat call with the same key returns the first message and changes
    nothing. Call it inside the transaction of the change that causes the email; the
    workers are told after commit.
    """
    if kind not in Kind.values:
        raise OutboxError(f"unknown kind {kind!r}")
    if (kind == Kind.TRANSACTIONAL) == bool(topic):
        raise OutboxError("transactional email has no topic; every other kind needs one")
    if existing := OutboxMessage.objects.filter(dedup_key=key).first():
        return existing
    now = timezone.now()
    message = OutboxMessage(
        public_id=uuid.uuid4(), customer=customer, kind=kind, topic=topic, purpose=purpose,
        template=template, dedup_key=key, priority=priority, not_before=not_before or now,
        expires_at=expires_at,
        to_email=(to_email or (customer.email if customer else "")).strip(),
    )
    render(message, context or {})
    if not message.to_email:
        message.status, message.reason = Status.SUPPRESSED, "no email address"
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # Queued by a concurrent call with the same key: theirs stands.
        return OutboxMessage.objects.get(dedup_key=key)
    if message.status == Status.QUEUED:
        transaction.on_commit(_wake_workers)
    return message


queue.alters_data = True


def _wake_workers() -> None:
    messages_queued.send(sender=OutboxMessage)


def render(message: OutboxMessage, context: dict) -> None:
    """Fill in the subject, both bodies and the headers (List-Unsubscribe for non-transactional)."""
    customer = message.customer
    site = settings.SITE_URL.rstrip("/")
    context = {"customer": customer, "site_url": site, "kind": message.kind,
               "topic": message.topic, "business_name": settings.RETENTION_BUSINESS_NAME,
               **context}
    unsubscribe = None
    if customer is not None:
        context.setdefault("account_url", links.url(customer, "account"))
        context["preferences_url"] = links.url(customer, "preferences")
        if message.kind != Kind.TRANSACTIONAL:
            unsubscribe = links.url(customer, "unsubscribe", t=message.topic)
            context["unsubscribe_url"] = unsubscribe
    elif message.kind != Kind.TRANSACTIONAL:
        unsubscribe = context.get("unsubscribe_url")  # a preview's sample link
    if message.kind == Kind.MARKETING and settings.RETENTION_TRACK_OPENS:
        context["open_pixel_url"] = links.url(None, "click", m=str(message.public_id), o=1)
    message.subject = " ".join(render_to_string(f"{message.template}.subject.txt",
                                                context).split())[:200]
    message.body_text = render_to_string(f"{message.template}.txt", context).strip() + "\n"
    html = render_to_string(f"{message.template}.html", context)
    if message.kind == Kind.MARKETING:
        html = _tracked(html, message, untracked={unsubscribe, context.get("preferences_url")})
    message.body_html = html
    domain = site.split("://", 1)[-1].split("/")[0].split(":")[0] or "localhost"
    headers = {"Message-ID": make_msgid(idstring=str(message.public_id), domain=domain)}
    if unsubscribe:
        # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" to this URL.
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.headers = headers


def _tracked(html: str, message: OutboxMessage, *, untracked: set) -> str:
    """Send the HTML part's links through the signed click redirect (not the opt-out links)."""
    def through_redirect(match: re.Match) -> str:
        target = match.group(1).replace("&amp;", "&")
        if target in untracked:
            return match.group(0)
        return f'href="{links.url(None, "click", m=str(message.public_id), u=target)}"'

    return HREF.sub(through_redirect, html)


# Sending ------------------------------------------------------------------------------------


def send_due(*, batch: int = 100, worker: str | None = None, now: datetime | None = None
             ) -> Counter:
    """Take up to `batch` due messages, decide each, send those that may go; return what
    happened to them.

    Safe to run on any number of workers at once, and twice: a message is taken by one
    worker only, and each later step is a conditional update of the row's status.
    """
    worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    outcomes, ready = _claim(batch, worker, now or timezone.now())
    if not ready:
        return outcomes
    backend = get_connection()
    try:
        backend.open()
    except (smtplib.SMTPException, *TRANSIENT) as exc:
        # The mail server cannot be reached: nothing was sent, so the batch goes back.
        log.warning("the mail server cannot be reached: %s", exc)
        OutboxMessage.objects.filter(pk__in=[m.pk for m in ready], status=Status.CLAIMED,
                                     claimed_by=worker).update(
            status=Status.QUEUED, claimed_by="", claimed_at=None,
            not_before=timezone.now() + timedelta(minutes=1),
            reason=f"waiting: the mail server could not be reached ({exc})"[:200])
        outcomes[Status.QUEUED] += len(ready)
        return outcomes
    try:
        size = settings.RETENTION_OUTBOX_HANDOVER_GROUP
        for first in range(0, len(ready), size):
            _hand_over_group(ready[first:first + size], worker, backend, outcomes)
    finally:
        try:
            backend.close()
        except Exception:  # noqa: BLE001  (closing a broken connection must not hide the outcome)
            log.warning("closing the email connection failed", exc_info=True)
    return outcomes


def drain(*, batch: int = 200, rounds: int = 50) -> Counter:
    """Send due emails a batch at a time until none is due, or `rounds` batches went; return
    what happened to them (the send task and the nightly sweep both do this)."""
    total: Counter = Counter()
    for _ in range(rounds):
        outcomes = send_due(batch=batch)
        if not outcomes:
            break
        total.update(outcomes)
    return total


def _hand_over_group(group: list[OutboxMessage], worker: str, backend, outcomes: Counter) -> None:
    """Mark a few messages sending (one committed write), hand each to the server, then mark
    the accepted ones sent (one write). A worker that dies in between leaves at most this
    group "sending", which the sweep marks failed, delivery unknown: never sent twice."""
    now = timezone.now()
    ids = [message.pk for message in group]
    marked = OutboxMessage.objects.filter(pk__in=ids, status=Status.CLAIMED,
                                          claimed_by=worker).update(
        status=Status.SENDING, sending_at=now, attempts=F("attempts") + 1)
    ours = set(ids) if marked == len(ids) else set(  # else: which ones this worker still held
        OutboxMessage.objects.filter(pk__in=ids, status=Status.SENDING, claimed_by=worker,
                                     sending_at=now).values_list("pk", flat=True))
    if lost := len(ids) - len(ours):
        outcomes["lost claim"] += lost
    accepted = []
    try:
        for message in group:
            if message.pk not in ours:
                continue
            status = _hand_over(message, worker, backend)
            if status == Status.SENT:
                accepted.append(message.pk)
            else:
                outcomes[status] += 1
    finally:
        OutboxMessage.objects.filter(pk__in=accepted, status=Status.SENDING,
                                     claimed_by=worker).update(
            status=Status.SENT, sent_at=timezone.now(), reason="")
        if accepted:
            outcomes[Status.SENT] += len(accepted)


def _claim(batch: int, worker: str, now: datetime) -> tuple[Counter, list[OutboxMessage]]:
    """Take due messages and decide each, in one transaction; return (outcomes, ready ones).

    The due rows are locked with SKIP LOCKED (PostgreSQL), so concurrent workers take
    different ones; their customers' rows are locked in id order (no deadlock between
    two workers), so that the budgets counted here cannot be spent by another worker
    until this transaction commits. The messages that may go are marked claimed (which
    spends the budget); the others are suppressed, expired or put back to wait, each
    with its reason.
    """
    due = Q(status=Status.QUEUED, not_before__lte=now)
    order = ("-priority", "not_before", "pk")
    outcomes: Counter = Counter()
    with transaction.atomic():
        rows = OutboxMessage.objects.filter(due).order_by(*order)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        messages = list(rows.defer("body_text", "body_html")[:batch])
        if not messages:
            return outcomes, []
        customer_ids = sorted({m.customer_id for m in messages if m.customer_id})
        customers = {c.pk: c for c in Customer.objects.filter(pk__in=customer_ids)
                     .select_for_update().order_by("pk")}
        addresses = {m.to_email.lower() for m in messages}
        suppressed = {row.email: row for row in Suppression.objects.filter(email__in=addresses)}
        preferences = {p.customer_id: p for p in
                       ContactPreferences.objects.filter(customer_id__in=customer_ids)}
        spent = contact.recent_spending(customer_ids, now)
        quiet = contact.quiet_until(now)
        decided: dict[tuple, list[int]] = {}
        for message in messages:
            customer = customers.get(message.customer_id)
            status, reason, not_before = _judge(
                message, customer, now, suppressed=suppressed.get(message.to_email.lower()),
                preferences=preferences.get(message.customer_id) or ContactPreferences(),
                spent=spent.get(message.customer_id, []), quiet=quiet)
            if status == Status.CLAIMED and message.kind != Kind.TRANSACTIONAL and customer:
                spent[customer.pk].insert(0, now)
            decided.setdefault((status, reason, not_before), []).append(message.pk)
            if status != Status.CLAIMED:
                outcomes[status] += 1
        for (status, reason, not_before), ids in decided.items():
            fields = {"status": status, "reason": reason}
            if status == Status.CLAIMED:
                fields.update(claimed_at=now, claimed_by=worker)
            elif status == Status.QUEUED:
                fields.update(not_before=not_before)
            OutboxMessage.objects.filter(pk__in=ids).update(**fields)
    ready_ids = decided.get((Status.CLAIMED, "", None), [])
    return outcomes, list(OutboxMessage.objects.filter(pk__in=ready_ids, claimed_by=worker)
                          .order_by(*order))


def _judge(message: OutboxMessage, customer: Customer | None, now: datetime, *,
           suppressed: Suppression | None, preferences: ContactPreferences,
           spent: list[datetime], quiet: datetime | None) -> tuple[str, str, datetime | None]:
    """What happens to one message now: (status, reason, wait until)."""
    if message.expires_at and message.expires_at <= now:
        return Status.EXPIRED, "not sent before it expired", None
    if suppressed is not None:
        return Status.SUPPRESSED, f"address {suppressed.get_reason_display().lower()}", None
    if customer is not None:
        preferences.customer = customer
        if reason := consent.why_not(customer, message.kind, message.topic, now=now,
                                     preferences=preferences):
            return Status.SUPPRESSED, reason, None
    if message.kind == Kind.TRANSACTIONAL:
        return Status.CLAIMED, "", None
    wait_until, reason = quiet, "waiting: quiet hours"
    if customer is not None and wait_until is None:
        wait_until, reason = contact.budget_frees_at(spent), f"waiting: {contact.budget_text()}"
    if wait_until is None:
        return Status.CLAIMED, "", None
    if message.expires_at and message.expires_at <= wait_until:
        return Status.SUPPRESSED, reason.removeprefix("waiting: "), None
    return Status.QUEUED, reason, wait_until


def _hand_over(message: OutboxMessage, worker: str, backend) -> str:
    """Give the message to the mail server; return SENT (accepted) or what it became."""
    email = EmailMultiAlternatives(
        subject=message.subject, body=message.body_text, from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to_email], headers=message.headers, connection=backend)
    email.attach_alternative(message.body_html, "text/html")
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        return _failed(message, worker, f"refused by the mail server: {exc.recipients}",
                       permanent=True, bounced=_is_hard_bounce(exc))
    except smtplib.SMTPResponseException as exc:
        transient = 400 <= exc.smtp_code < 500
        return _failed(message, worker, f"{exc.smtp_code} {exc.smtp_error!r}",
                       permanent=not transient, bounced=exc.smtp_code in (550, 551, 553))
    except TRANSIENT as exc:
        backend.close()  # the next message opens a fresh connection
        return _failed(message, worker, f"{type(exc).__name__}: {exc}", permanent=False)
    return Status.SENT


def _failed(message: OutboxMessage, worker: str, error: str, *, permanent: bool,
            bounced: bool = False) -> str:
    """Record a failed hand-over: retry later with backoff, or fail for good."""
    message.refresh_from_db(fields=["attempts"])
    retry = not permanent and message.attempts < settings.RETENTION_OUTBOX_MAX_ATTEMPTS
    fields = {"last_error": error[:2000]}
    if retry:
        delay = timedelta(minutes=min(2 ** message.attempts, 360))
        fields.update(status=Status.QUEUED, not_before=timezone.now() + delay, claimed_by="",
                      claimed_at=None, reason=f"retrying after: {error[:150]}")
    else:
        fields.update(status=Status.FAILED, reason=error[:200])
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk, status=Status.SENDING,
                                     claimed_by=worker).update(**fields)
        if bounced:
            Suppression.objects.get_or_create(
                email=message.to_email.lower(),
                defaults={"reason": Suppression.Reason.BOUNCE, "detail": error[:300]})
    return Status.QUEUED if retry else Status.FAILED


def _is_hard_bounce(exc: smtplib.SMTPRecipientsRefused) -> bool:
    return any(code in (550, 551, 553) for code, _text in exc.recipients.values())


# Upkeep -------------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Deal with the messages of workers that went quiet (see the module's docstring)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.RETENTION_OUTBOX_STALE_SECONDS)
    requeued = OutboxMessage.objects.filter(status=Status.CLAIMED, claimed_at__lt=stale).update(
        status=Status.QUEUED, claimed_by="", claimed_at=None)
    unknown = OutboxMessage.objects.filter(status=Status.SENDING, sending_at__lt=stale).update(
        status=Status.FAILED,
        reason="delivery unknown: the worker stopped while handing it over; not resent, "
               "so that it cannot arrive twice")
    return {"requeued": requeued, "failed": unknown}


def resend(message: OutboxMessage) -> bool:
    """Queue a failed message again (staff); returns whether it was failed."""
    return bool(OutboxMessage.objects.filter(pk=message.pk, status=Status.FAILED).update(
        status=Status.QUEUED, not_before=timezone.now(), attempts=0, claimed_by="",
        claimed_at=None, sending_at=None, reason="resent by staff"))


resend.alters_data = True


def cleanup(*, now: datetime | None = None) -> int:
    """Delete finished messages older than RETENTION_OUTBOX_KEEP_DAYS; return how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETENTION_OUTBOX_KEEP_DAYS)
    return OutboxMessage.objects.filter(status__in=FINISHED, created_at__lt=cutoff).delete()[0]


def record_click(public_id: str, url: str | None) -> OutboxMessage | None:
    """Count a click (or, with no URL, an open) on a message; return the message."""
    message = OutboxMessage.objects.filter(public_id=public_id).first()
    if message is None:
        return None
    if url:
        EmailClick.objects.create(message=message, url=url[:1000], clicked_at=timezone.now())
        OutboxMessage.objects.filter(pk=message.pk).update(clicks=F("clicks") + 1)
    return message


def daily_counts(days: int = 30) -> list[dict]:
    """Sent, failed, expired, suppressed ([(reason, count)]) and clicked per day, newest first
    (two queries)."""
    since = timezone.now() - timedelta(days=days)
    rows: dict = {}
    finished = (OutboxMessage.objects.filter(updated_at__gte=since, status__in=FINISHED)
                .annotate(day=TruncDate("updated_at")).values("day", "status", "reason")
                .annotate(n=Count("pk")).order_by())
    for row in finished:
        day = rows.setdefault(row["day"], {"day": row["day"], "sent": 0, "failed": 0,
                                           "expired": 0, "suppressed": Counter(), "clicked": 0})
        if row["status"] == Status.SUPPRESSED:
            day["suppressed"][row["reason"]] += row["n"]
        elif row["status"] in (Status.SENT, Status.FAILED, Status.EXPIRED):
            day[row["status"]] += row["n"]
    clicks = (EmailClick.objects.filter(clicked_at__gte=since).annotate(day=TruncDate("clicked_at"))
              .values("day").annotate(n=Count("pk")).order_by())
    for row in clicks:
        rows.setdefault(row["day"], {"day": row["day"], "sent": 0, "failed": 0, "expired": 0,
                                     "suppressed": Counter(), "clicked": 0})["clicked"] = row["n"]
    for row in rows.values():  # a list, not a Counter: templates look up "items" as a key
        row["suppressed"] = sorted(row["suppressed"].items())
    return sorted(rows.values(), key=lambda row: row["day"], reverse=True)
