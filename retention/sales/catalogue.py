"""Courses and bundles: saving them keeps the price history.

Every change of a list price, from the admin, the API or an import, goes
through `save_offering`, which writes a PriceChange row in the same
transaction. The business compares figures before and after a price update,
so the history must be complete.
"""

from django.db import transaction
from django.utils import timezone

from retention.sales.models import Bundle, Course, Offering, PriceChange


def save_offering(offering: Offering, *, note: str = "", changed_at=None) -> Offering:
    """Save a course or bundle, recording a PriceChange if its price changed."""
    with transaction.atomic():
        old_price = None
        if offering.pk is not None:
            # Lock the row so that two people changing the price at once each
            # record the price they really replaced.
            old_price = (
                type(offering).objects.select_for_update(no_key=True)
                .filter(pk=offering.pk).values_list("price", flat=True).first()
            )
        offering.save()
        if old_price is not None and old_price != offering.price:
            PriceChange.objects.create(
                course=offering if isinstance(offering, Course) else None,
                bundle=offering if isinstance(offering, Bundle) else None,
                old_price=old_price,
                new_price=offering.price,
                changed_at=changed_at or timezone.now(),
                note=note,
            )
    return offering


save_offering.alters_data = True
