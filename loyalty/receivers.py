"""Points for the orders that sales writes (retention.sales.signals.orders_written), and the
lots' expiry dates when the program's expiry changes."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from loyalty import earning, expiry
from loyalty.models import Program
from retention.sales.signals import orders_written


@receiver(orders_written)
def earn_for_written_orders(sender, orders, **kwargs) -> None:
    earning.earn_for_orders(orders)


@receiver(post_save, sender=Program)
def date_lots_when_expiry_changes(sender, instance: Program, raw=False, **kwargs) -> None:
    if not raw and getattr(instance, "expiry_changed", False):
        expiry.switched(instance)
