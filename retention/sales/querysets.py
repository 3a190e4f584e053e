"""Reusable filters for the core models."""

from django.db import models


class OrderQuerySet(models.QuerySet):
    def counting(self):
        """Orders that count in figures: status `paid` (spec "Inputs")."""
        return self.filter(status="paid")


class CustomerQuerySet(models.QuerySet):
    def buyers(self):
        """Customers with at least one counting order (from the cached summary)."""
        return self.filter(order_count__gt=0)

    def organisations(self):
        return self.filter(customer_type="organisation")
