"""Create the nightly pipeline's periodic task, once.

The schedule lives in the database (django-celery-beat) so that staff can
change it in the admin. It is created here rather than from a beat_schedule
setting because beat rewrites such entries from settings each time it starts,
which would undo the staff's changes.
"""

from django.conf import settings
from django.db import migrations

NAME = "Nightly pipeline"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour=str(settings.RETENTION_NIGHTLY_HOUR),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=NAME,
        task="retention.tasks.run_nightly",
        crontab=crontab,
        description="Recomputes summaries (and, as they arrive, metrics, segments, tiers, "
        "point expiry, at-risk scores and emails). Safe to run twice.",
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
