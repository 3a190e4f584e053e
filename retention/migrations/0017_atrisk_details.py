"""At-risk rows get `details`, where the reasons other apps register keep their facts
(step 1 of 3: added nullable, so that existing rows need no value yet)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("retention", "0016_predicted_value_and_at_risk")]

    operations = [
        migrations.AddField(
            model_name="atrisk",
            name="details",
            field=models.JSONField(
                blank=True, null=True,
                help_text="The facts of the reasons other apps contribute, by reason code."),
        ),
    ]
