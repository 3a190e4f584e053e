"""Metric alerts: a month to date that moves beyond a threshold against its trailing average.

`check(night)` runs each enabled AlertRule: the metric's month to date (1st to
`night`) against the average of the same days of the rule's previous months (the
1st to the 20th against the 1st to the 20th: a count or an amount over 3 days is not
compared with whole months, which would fall at every month's start), read from
stored snapshots (made when missing). A move of at least the threshold,
relative, in the rule's direction raises an Alert: once per rule and month
(a unique constraint; a rerun finds the alert already there). Alerts are
emailed to managers through the outbox (queued in the same transaction, sent by
the workers after commit, once per alert and address); an alert raised while no
manager has an email address is emailed on a later night.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from retention import formatting
from retention.figures import registry, snapshots
from retention.figures.models import Alert, AlertRule
from retention.mail import outbox
from retention.money import money
from retention.periods import month_start, months_before
from retention.permissions import MANAGERS_GROUP


def _figures(start: date, end: date) -> dict:
    """The stored figures of [start, end] for every customer, computed once when missing."""
    return snapshots.figures(start, end)


def evaluate(rule: AlertRule, night: date) -> tuple[Decimal, Decimal, Decimal] | None:
    """(value, trailing average, relative change %) when the rule fires on `night`, else None."""
    month = month_start(night)
    value = _figures(month, night)[rule.metric]
    days = night - month  # the same days of each trailing month (all of a shorter one)
    history = [_figures(start, min(start + days, end))[rule.metric] for start, end in
               months_before(month, rule.trailing_months)]
    history = [Decimal(str(v)) for v in history if v is not None]
    if value is None or not history:
        return None
    average = sum(history) / len(history)
    if average == 0:
        return None
    value = Decimal(str(value))
    change = (value - average) * 100 / abs(average)
    fires = {
        AlertRule.Direction.UP: change >= rule.threshold_percent,
        AlertRule.Direction.DOWN: change <= -rule.threshold_percent,
        AlertRule.Direction.EITHER: abs(change) >= rule.threshold_percent,
    }[rule.direction]
    if not fires:
        return None
    return value, money(average), money(change)


def check(night: date) -> list[Alert]:
    """Raise the alerts of `night` (each once) and email the ones not emailed yet."""
    raised = []
    for rule in AlertRule.objects.filter(enabled=True):
        result = evaluate(rule, night)
        if result is None:
            continue
        value, average, change = result
        try:
            with transaction.atomic():
                raised.append(Alert.objects.create(
                    rule=rule, month=month_start(night), value=value, trailing_average=average,
                    change_percent=change, raised_at=timezone.now(),
                ))
        except IntegrityError:
            pass  # raised on an earlier run for this month: once per alert
    pending = list(Alert.objects.filter(emailed_at__isnull=True).select_related("rule"))
    if pending:
        email(pending)
    return raised


def email(alerts: list[Alert]) -> int:
    """Queue an email of each alert to every manager (through the outbox, in this transaction)
    and mark the alert emailed. An alert stays pending while no manager has an address."""
    recipients = list(
        get_user_model().objects.filter(is_active=True, groups__name=MANAGERS_GROUP)
        .exclude(email="").values_list("email", flat=True).distinct()
    )
    if not recipients:
        return 0
    link = f"{settings.SITE_URL.rstrip('/')}/metrics/?period=this_month"
    for alert in alerts:
        metric, unit = registry.label(alert.rule.metric), registry.unit(alert.rule.metric)
        context = {
            "metric": metric, "value": formatting.figure(alert.value, unit),
            "month": f"{alert.month:%B %Y}",
            "trailing_average": formatting.figure(alert.trailing_average, unit),
            "trailing_months": alert.rule.trailing_months,
            "change_percent": formatting.change(alert.change_percent, formatting.NUMBER),
            "rule": f"{metric} {alert.rule.get_direction_display().lower()} by "
                    f"{formatting.number(alert.rule.threshold_percent)} %",
            "metrics_url": link,
        }
        with transaction.atomic():
            for address in recipients:
                outbox.queue(None, to_email=address, template="email/metric_alert",
                             purpose="metric_alert", kind=outbox.Kind.TRANSACTIONAL,
                             key=f"metric_alert:{alert.pk}:{address.lower()}", context=context)
            Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(
                emailed_at=timezone.now())
    return len(alerts)
