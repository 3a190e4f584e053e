"""What a price update did: the main metrics over the same length of time before and after it.

A price update is the set of price changes recorded on one date (the business
changes many prices at once); the offerings they touch are the repriced ones.
The figures are shown for all customers and for the customers who bought a
repriced offering (a paid order line for it, at any time).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from retention.figures import metrics, reports
from retention.money import ratio
from retention.sales.models import PriceChange

METRICS = ["retention_rate", "repeat_purchase_rate", "average_order_value", "revenue_per_buyer",
           "new_offering_engagement_rate", "nps", "csat"]


class NoPriceUpdate(LookupError):
    """No price change was recorded on the date asked for (or at all)."""


def update_dates() -> list[date]:
    """The dates on which prices changed, newest first."""
    moments = PriceChange.objects.order_by("-changed_at").values_list("changed_at", flat=True)
    return list(dict.fromkeys(timezone.localtime(moment).date() for moment in moments))


def compare(on: date | None = None, *, days: int | None = None, today: date | None = None) -> dict:
    """The update of `on` (default: the latest), compared over `days` days before and after.

    By default `days` is the time since the update up to yesterday, so the "after"
    period is complete; at least one day.
    """
    today = today or timezone.localdate()
    dates = update_dates()
    if not dates:
        raise NoPriceUpdate("no price change has been recorded")
    on = on or dates[0]
    if on not in dates:
        raise NoPriceUpdate(f"no price change on {on} (price changes on: "
                            f"{', '.join(map(str, dates[:10]))})")
    days = days or max((today - on).days, 1)
    before = (on - timedelta(days=days), on - timedelta(days=1))
    after = (on, on + timedelta(days=days - 1))
    changes = [change for change in PriceChange.objects.select_related("course", "bundle")
               if timezone.localtime(change.changed_at).date() == on]
    codes = tuple(sorted({change.offering.code for change in changes}))
    groups = {"all": metrics.Subset(), "buyers_of_repriced": metrics.Subset(offerings=codes)}
    return {
        "date": on.isoformat(),
        "days": days,
        "before": {"start": before[0].isoformat(), "end": before[1].isoformat()},
        "after": {"start": after[0].isoformat(), "end": after[1].isoformat()},
        "changes": [{"offering": change.offering.code, "old_price": change.old_price,
                     "new_price": change.new_price, "change_percent": change.change_percent}
                    for change in changes],
        **{name: _side_by_side(before, after, subset) for name, subset in groups.items()},
    }


def stored_comparison(on: date | None, days: int | None, *, as_of: date,
                      refresh: bool = False) -> dict:
    """`compare` for the managers' page (days default: the update's day to `as_of`), kept as
    a stored report until data dated by the end of the "after" period changes."""
    dates = update_dates()
    if not dates:
        raise NoPriceUpdate("No price change has been recorded yet.")
    on = on or dates[0]
    days = days or max((as_of - on).days + 1, 1)
    return reports.cached(
        "price_update", f"{on}:{days}", depends_until=on + timedelta(days=days - 1),
        compute=lambda: compare(on, days=days, today=as_of + timedelta(days=1)), refresh=refresh)


def _side_by_side(before, after, subset) -> dict:
    first, second = (metrics.compute(*period, subset=subset) for period in (before, after))
    rows = {}
    for key in METRICS:
        was, now = _value(first, key), _value(second, key)
        rows[key] = {"before": was, "after": now,
                     "change": None if was is None or now is None else now - was}
    return rows


def _value(figures: dict, key: str) -> Decimal | None:
    if key == "revenue_per_buyer":  # not a spec key: revenue / buyers, rounded as money
        return ratio(figures["revenue"], figures["buyers"])
    return figures[key]
