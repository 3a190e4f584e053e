"""The change log: which business days writes touched, so stored figures know when to go.

Stored figures (metric snapshots, stored reports) hold until data dated in their period
changes. Every write of orders, order lines, memberships or enrolments records, in its
own transaction, a DataChange row with the earliest business day it touched: the CSV and
API imports once per import (an order's old and new date both count), and saves and
deletes through the ORM (the admin, the API's memberships and enrolments) through the
signals below. A reader asks `earliest_day_since(computed_at)`; figures that end before
that day are still right, the others are computed again.

A change is recorded just before its transaction commits, so a computation that began
in between (milliseconds; COMMIT_MARGIN covers it) cannot have seen it and still
counts it as later. The nightly job deals with the changes since its previous run (it
recomputes or drops the stored figures they touch) and then deletes the older rows.
Changes to a customer's own fields (type, source) are not recorded:
the platform sends them all day, and they do not move a figure of all customers; the
nightly job recomputes the periods in progress anyway.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Min, Q
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from retention.sales.models import DataChange, Enrolment, Membership, Order, OrderLine

COMMIT_MARGIN = timedelta(seconds=2)


def record(first_day: date, *, source: str) -> None:
    """Note that a write touched data dated `first_day` and later (call inside the write)."""
    DataChange.objects.create(first_day=first_day, source=source[:30],
                              recorded_at=timezone.now())


def earliest_day_since(moment: datetime) -> date | None:
    """The earliest day that a write recorded since `moment` touched, or None (one query)."""
    return DataChange.objects.filter(recorded_at__gte=moment - COMMIT_MARGIN).aggregate(
        first=Min("first_day"))["first"]


def look_up(moments: list[datetime], cache: dict) -> None:
    """Fill `cache` with `earliest_day_since` of each moment, in one query.

    The change rows since the earliest moment are few (a day's writes, one row an
    import or API call); one conditional aggregate per moment reads them once.
    """
    wanted = sorted(set(moments) - set(cache))
    if not wanted:
        return
    found = DataChange.objects.filter(recorded_at__gte=wanted[0] - COMMIT_MARGIN).aggregate(
        **{f"m{i}": Min("first_day", filter=Q(recorded_at__gte=moment - COMMIT_MARGIN))
           for i, moment in enumerate(wanted)})
    cache.update({moment: found[f"m{i}"] for i, moment in enumerate(wanted)})


def unchanged_through(end: date, since: datetime, *, cache: dict | None = None) -> bool:
    """Whether nothing dated on or before `end` was written since `since`.

    `cache` (a dict kept for one request) saves repeating the look-up for the same
    moment, as a page that reads several stored figures of one night does.
    """
    if cache is not None and since in cache:
        earliest = cache[since]
    else:
        earliest = earliest_day_since(since)
        if cache is not None:
            cache[since] = earliest
    return earliest is None or earliest > end


def _day(moment: datetime) -> date:
    return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()


@receiver(pre_save, sender=Order)
def _remember_old_date(sender, instance: Order, **kwargs) -> None:
    """An order moved to another date changes the figures of its old date too."""
    instance._old_ordered_at = (
        Order.objects.filter(pk=instance.pk).values_list("ordered_at", flat=True).first()
        if instance.pk and not kwargs.get("raw") else None
    )


@receiver(post_save, sender=Order)
@receiver(post_delete, sender=Order)
def _order_written(sender, instance: Order, **kwargs) -> None:
    moments = [instance.ordered_at, getattr(instance, "_old_ordered_at", None)]
    record(min(_day(moment) for moment in moments if moment), source="order")


@receiver(post_save, sender=OrderLine)
@receiver(post_delete, sender=OrderLine)
def _line_written(sender, instance: OrderLine, **kwargs) -> None:
    ordered_at = Order.objects.filter(pk=instance.order_id).values_list(
        "ordered_at", flat=True).first()
    if ordered_at is not None:
        record(_day(ordered_at), source="order line")


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
@receiver(post_save, sender=Enrolment)
@receiver(post_delete, sender=Enrolment)
def _dated_row_written(sender, instance, **kwargs) -> None:
    record(instance.started_on, source=sender._meta.model_name)
