"""Acting on the customers at risk: follow-ups for staff and re-engagement lists.

A follow-up asks one person to get in touch with one customer. A customer has at most
one open follow-up (a partial unique index says so): assigning again hands the open
one to the new person instead of adding a second. Re-engagement lists gather customers
for a win-back campaign; adding a customer twice keeps the first entry.

Both take many customers at once (the at-risk page and the admin act on a selection)
and write in bulk; both are safe to repeat, and two staff acting on the same customers
at the same moment end with one open follow-up and one list entry per customer, because
the database's unique constraints decide, not a read-then-write in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from retention.sales.models import Customer
from retention.value import atrisk
from retention.value.models import AtRisk, FollowUp, ReEngagementList, ReEngagementMember

REASON_LENGTH = 500  # FollowUp.reason and ReEngagementMember.reasons


class NothingSelected(ValueError):
    def __init__(self) -> None:
        super().__init__(_("Select at least one customer."))


class ListNotAllowed(ValueError):
    """A new list was asked for by someone who may add customers to lists but not make one."""

    def __str__(self) -> str:
        return "You may add customers to an existing list, but not make a new one."


class ListNameMissing(ValueError):
    def __init__(self) -> None:
        super().__init__(_("Choose a re-engagement list or give a name for a new one."))


@dataclass
class Assigned:
    created: int
    reassigned: int
    unchanged: int = 0

    def __str__(self) -> str:
        return " ".join([
            ngettext("%(n)s follow-up created,", "%(n)s follow-ups created,", self.created)
            % {"n": self.created},
            _("%(n)s reassigned, %(unchanged)s already with that person.")
            % {"n": self.reassigned, "unchanged": self.unchanged}])


def reasons_for(customer_ids: list[int]) -> dict[int, str]:
    """Each customer's latest at-risk reasons in words (one query), for the record."""
    latest = AtRisk.objects.filter(customer_id__in=customer_ids).order_by(
        "customer_id", "-as_of")
    out: dict[int, str] = {}
    for row in latest:
        if row.customer_id not in out:
            out[row.customer_id] = "; ".join(atrisk.in_words(row))[:REASON_LENGTH]
    return out


def assign(customer_ids, *, to, by, due_on: date | None = None) -> Assigned:
    """Give each customer an open follow-up assigned to `to`; reassign open ones.

    The reason recorded is the customer's latest at-risk reasons. Runs in one
    transaction: one UPDATE for the open follow-ups, one INSERT for the rest.
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        raise NothingSelected
    reasons = reasons_for(ids)
    with transaction.atomic():
        open_ = FollowUp.objects.filter(customer_id__in=ids, status=FollowUp.Status.OPEN)
        already = set(open_.values_list("customer_id", flat=True))
        reassigned = open_.exclude(assigned_to=to).update(assigned_to=to)
        new = [FollowUp(customer_id=pk, assigned_to=to, created_by=by, due_on=due_on,
                        reason=reasons.get(pk, "")) for pk in ids if pk not in already]
        # A concurrent assign of the same customer loses to the one-open constraint
        # and is skipped, rather than failing the whole selection.
        FollowUp.objects.bulk_create(new, ignore_conflicts=True)
    return Assigned(created=len(new), reassigned=reassigned,
                    unchanged=len(already) - reassigned)


def complete(follow_ups, *, note: str = "") -> int:
    """Mark open follow-ups done (with a note, if given); return how many changed."""
    changes = {"status": FollowUp.Status.DONE, "done_at": timezone.now()}
    if note:
        changes["note"] = note
    return follow_ups.filter(status=FollowUp.Status.OPEN).update(**changes)


def add_to_list(customer_ids, *, list_name: str = "", existing: ReEngagementList | None = None,
                by=None, may_create: bool = True) -> tuple[ReEngagementList, int]:
    """Add customers to a re-engagement list (an existing one, or one made by name).

    Returns the list and how many customers were new to it; customers already on it
    keep their first entry. A name no list has makes a new list, unless `may_create` is
    false (the person may add members but not lists): then ListNotAllowed.
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        raise NothingSelected
    if existing is None:
        name = list_name.strip()
        if not name:
            raise ListNameMissing
        if not may_create:
            existing = ReEngagementList.objects.filter(name=name[:100]).first()
            if existing is None:
                raise ListNotAllowed
        else:
            existing, _created = ReEngagementList.objects.get_or_create(name=name[:100])
    reasons = reasons_for(ids)
    known = set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True))
    with transaction.atomic():
        before = existing.members.count()
        ReEngagementMember.objects.bulk_create(
            [ReEngagementMember(list=existing, customer_id=pk, added_by=by,
                                reasons=reasons.get(pk, "")) for pk in ids if pk in known],
            ignore_conflicts=True)
        added = existing.members.count() - before
    return existing, added
