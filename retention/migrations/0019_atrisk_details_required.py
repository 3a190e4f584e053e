"""Step 3 of 3: `details` is required, and the detractor column goes: the surveys app, when it
registers the detractor reason, keeps the answer in `details`, as every contributed reason
does."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("retention", "0018_atrisk_details_backfill")]

    operations = [
        migrations.AlterField(
            model_name="atrisk",
            name="details",
            field=models.JSONField(
                blank=True, default=dict,
                help_text="The facts of the reasons other apps contribute, by reason code."),
        ),
        migrations.RemoveField(model_name="atrisk", name="detractor_score"),
    ]
