"""Create the outbox sweep's periodic task (every minute), once.

Like the nightly pipeline's (0002), it lives in the database so that staff can change
it in the admin without beat undoing the change.
"""

from django.db import migrations

NAME = "Email outbox sweep"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.create(
        name=NAME,
        task="retention.tasks.sweep_outbox",
        interval=every_minute,
        description="Sends due email (retries, messages that waited for quiet hours or the "
        "contact budget) and deals with the messages of workers that stopped. Safe to run "
        "twice.",
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0012_outbox_consent_links"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
