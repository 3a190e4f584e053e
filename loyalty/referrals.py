"""Referrals: each customer's code, the referrals the platform reports, and their rewards.

A referral is recorded when the platform reports that a new customer signed up with a
code (`record`). It is refused, and recorded as refused with the reason, when the
referred customer is the referrer, has the same or a near-identical email address (the
same mailbox once `+tags`, dots and trailing digits of the local part are dropped), or
the same payment or device fingerprint as the referrer or as another customer the
referrer brought. An accepted referral sets the customer's `referred_by`, which the
metric `referral_rate` reads.

The referred customer's welcome points come with their first paid order
(loyalty/earning.py); the referrer's points come once that order is past the refund
window and still paid (`reward_referrers`, a nightly step), at most the program's cap of
referrals a calendar year.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from loyalty import ledger
from loyalty.models import Account, Entry, Program, Referral
from loyalty.redemptions import ALPHABET
from loyalty.sql import end_of
from retention.sales.models import Customer, Order

PAID = Order.Status.PAID


class UnknownCode(ledger.LedgerError):
    code = "unknown_code"


def code_of(account: Account) -> str:
    """The account's referral code, given the first time it is asked for."""
    while not account.referral_code:
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                if Account.objects.filter(pk=account.pk, referral_code__isnull=True).update(
                        referral_code=code):
                    account.referral_code = code
                else:
                    account.refresh_from_db(fields=["referral_code"])
        except IntegrityError:
            continue  # taken by another account: draw again
    return account.referral_code


def mailbox(email: str) -> str:
    """The mailbox an address reaches, for comparing: 'Jo.Smith+x2@Example.com' and
    'josmith@example.com' are the same person's."""
    local, _at, domain = email.strip().lower().partition("@")
    local = local.split("+", 1)[0].replace(".", "")
    local = re.sub(r"\d+$", "", local) or local
    domain = {"googlemail.com": "gmail.com"}.get(domain, domain)
    return f"{local}@{domain}"


@dataclass(frozen=True)
class Recorded:
    referral: Referral
    created: bool


def refusal(referrer: Account, referred: Customer, fingerprint: str) -> str:
    """Why this referral is refused, or ''."""
    owner = referrer.customer
    if owner.pk == referred.pk:
        return "a customer cannot refer themselves"
    if owner.email and referred.email and mailbox(owner.email) == mailbox(referred.email):
        return "the same or a near-identical email address as the referrer's"
    if fingerprint:
        same = Referral.objects.filter(fingerprint=fingerprint).filter(
            Q(referrer=referrer) | Q(referred=owner)).exists()
        if same:
            return "the same payment or device fingerprint as the referrer or their referrals"
    return ""


def record(code: str, referred: Customer, *, key: str, fingerprint: str = "") -> Recorded:
    """Record that `referred` came with referral `code`; once per key. Raises UnknownCode."""
    if (existing := Referral.objects.filter(key=key).first()) is not None:
        return Recorded(existing, created=False)
    referrer = Account.objects.select_related("customer").filter(
        referral_code=code.strip().upper()).first()
    if referrer is None:
        raise UnknownCode(f"no customer has the referral code {code!r}")
    with transaction.atomic():
        accepted = Referral.objects.filter(referred=referred).exclude(
            status=Referral.Status.REFUSED).select_for_update().first()
        why = refusal(referrer, referred, fingerprint)
        if not why and accepted is not None:
            why = "the customer was referred already"
        referral = Referral.objects.create(
            referrer=referrer, referred=referred, code=referrer.referral_code,
            fingerprint=fingerprint[:128], key=key, created_at=timezone.now(),
            status=Referral.Status.REFUSED if why else Referral.Status.PENDING,
            refused_because=why)
        if not why:
            Customer.objects.filter(pk=referred.pk).update(referred_by=referrer.customer)
    return Recorded(referral, created=True)


record.alters_data = True


def reward_referrers(day: date, program: Program | None = None) -> int:
    """Credit the referrers whose referred customer's first paid order is past the refund
    window; returns how many were rewarded. Idempotent (keyed by the referral)."""
    program = program or Program.current()
    settled_before = end_of(day - timedelta(days=program.refund_days))
    first_paid = Order.objects.filter(customer_id=OuterRef("referred_id"), status=PAID)
    due = (Referral.objects.filter(status=Referral.Status.PENDING)
           .filter(Exists(first_paid.filter(ordered_at__lt=settled_before)))
           .select_related("referrer", "referred").order_by("created_at", "pk"))
    rewarded = 0
    for referral in due.iterator(chunk_size=500):
        with transaction.atomic():
            year_start = day.replace(month=1, day=1)
            this_year = Referral.objects.filter(
                referrer=referral.referrer, status=Referral.Status.REWARDED,
                rewarded_at__date__gte=year_start).count()
            if this_year >= program.referral_cap or referral.referrer.held_out:
                why = ("the referrer is in the program's holdout" if referral.referrer.held_out
                       else f"over the referrer's {program.referral_cap} rewarded referrals a year")
                Referral.objects.filter(pk=referral.pk).update(
                    status=Referral.Status.CAPPED, refused_because=why)
                continue
            ledger.credit(referral.referrer, program.referrer_points, kind=Entry.Kind.EARN,
                          reason=f"Referred {referral.referred.display_name}",
                          source=Entry.Source.REFERRAL, source_ref=str(referral.pk),
                          key=f"referral:{referral.pk}", earned_on=day)
            Referral.objects.filter(pk=referral.pk).update(
                status=Referral.Status.REWARDED, rewarded_at=timezone.now())
            rewarded += 1
    return rewarded
