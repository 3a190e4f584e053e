"""What the customer's page keeps: the requests for fresh links, to rate-limit them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LinkRequest(models.Model):
    """A request for a fresh link, kept an hour or so to rate-limit them (account/fresh_links.py)."""

    email_hash = models.CharField(max_length=64, help_text=_("HMAC-SHA-256 (keyed with SECRET_KEY) of the address asked for."))
    ip = models.GenericIPAddressField(null=True, blank=True)
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["email_hash", "requested_at"], name="retention_linkreq_email"),
            models.Index(fields=["ip", "requested_at"], name="retention_linkreq_ip"),
        ]
