"""Metric alerts: a month to date that moves beyond a threshold against its trailing average.

`check(night)` runs each enabled AlertRule: the metric's month to date (1st to
`night`) against the average of the rule's previous complete months (from
stored month snapshots, made when missing). A move of at least the threshold,
relative, in the rule's direction raises an Alert: once per rule and month
(a unique constraint; a rerun finds the alert already there). Alerts are
emailed to managers after the transaction commits, and marked emailed only
when the mail went out, so a failed send is retried the next night.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from retention import metrics, snapshots
from retention.models import Alert, AlertRule, MetricSnapshot

MANAGERS = "Managers"


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _previous_months(month: date, count: int) -> list[tuple[date, date]]:
    months, end = [], month - timedelta(days=1)
    for _ in range(count):
        start = end.replace(day=1)
        months.insert(0, (start, end))
        end = start - timedelta(days=1)
    return months


def _figures(start: date, end: date) -> dict:
    stored = MetricSnapshot.objects.filter(
        grain=MetricSnapshot.Grain.MONTH, start=start, end=end, subset="",
        window_days=settings.RETENTION_ACTIVITY_WINDOW_DAYS,
        new_offering_window_days=settings.NEW_OFFERING_WINDOW_DAYS,
    ).first()
    if stored is None:
        stored = snapshots.save(start, end, grain=MetricSnapshot.Grain.MONTH)
    return stored.figures


def evaluate(rule: AlertRule, night: date) -> tuple[Decimal, Decimal, Decimal] | None:
    """(value, trailing average, relative change %) when the rule fires on `night`, else None."""
    month = _month_start(night)
    value = _figures(month, night)[rule.metric]
    history = [_figures(start, end)[rule.metric] for start, end in
               _previous_months(month, rule.trailing_months)]
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
    return value, metrics.money(average), metrics.money(change)


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
                    rule=rule, month=_month_start(night), value=value, trailing_average=average,
                    change_percent=change, raised_at=timezone.now(),
                ))
        except IntegrityError:
            pass  # raised on an earlier run for this month: once per alert
    pending = list(Alert.objects.filter(emailed_at__isnull=True).select_related("rule"))
    if pending:
        # Talk to the mail server after commit, never inside the transaction.
        transaction.on_commit(lambda: email(pending))
    return raised


def email(alerts: list[Alert]) -> int:
    """Email these alerts to the managers; mark each emailed. Returns the number sent."""
    recipients = list(
        get_user_model().objects.filter(is_active=True, groups__name=MANAGERS)
        .exclude(email="").values_list("email", flat=True).distinct()
    )
    if not recipients:
        return 0
    base = settings.SITE_URL.rstrip("/")
    sent = 0
    for alert in alerts:
        link = f"{base}/metrics/?period=this_month"
        metric = alert.rule.metric.replace("_", " ")
        send_mail(
            subject=f"{metric} {alert.change_percent:+} % this month",
            message=(
                f"{metric} is {alert.value} for {alert.month:%B %Y} so far, against an average of "
                f"{alert.trailing_average} over the previous {alert.rule.trailing_months} months "
                f"({alert.change_percent:+} %; the rule alerts at {alert.rule.threshold_percent} %).\n\n"
                f"What is behind it: {link}\n"
            ),
            from_email=None, recipient_list=recipients,
        )
        Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
        sent += 1
    return sent
