"""What sales tells the programs about orders, without knowing them.

`orders_written` is sent with `orders`, a queryset of the orders just created or changed:

- by the imports (`import_orders` and the orders API, retention.sales.ingest) once per
  import, inside its transaction, after the merge: a receiver's writes commit or roll back
  with the import's, and a dry run sends nothing;
- after the commit of a save of one order through the ORM (the admin), with that order
  (its lines are saved after it, so the receiver sees them).

Loyalty earns points from it (loyalty/earning.py). A receiver works on the queryset as a
whole, in set-based SQL, never row by row: an import may hand over a million orders.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

from retention.sales.models import Order

orders_written = Signal()


def send_written(orders) -> None:
    orders_written.send(sender=Order, orders=orders)


@receiver(post_save, sender=Order)
def _order_saved(sender, instance: Order, raw=False, **kwargs) -> None:
    if raw:  # loaddata
        return
    pk = instance.pk
    transaction.on_commit(lambda: send_written(Order.objects.filter(pk=pk)))
