"""The record of each run of the nightly pipeline."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class NightlyRun(models.Model):
    """One run of the nightly pipeline for the night after `night` (a day in the business zone)."""

    night = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcomes = models.JSONField(default=list, help_text=_("[step, what it did] pairs."))

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["finished_at"], name="retention_nightly_finished")]

    def __str__(self) -> str:
        return f"night of {self.night} at {self.started_at:%Y-%m-%d %H:%M}"
