"""Step 2 of 3: fill `details` of the existing at-risk rows. A detractor's answer, kept until
now in its own column, becomes the surveys reason's facts: {"detractor": {"score": N}};
every other row gets {}. Batched by primary key, so a long history of month-end lists is
not rewritten in one statement. Reversible: the score goes back to its column."""

from django.db import migrations

BATCH = 10_000


def forward(apps, schema_editor):
    AtRisk = apps.get_model("retention", "AtRisk")
    rows = AtRisk.objects.filter(details__isnull=True).order_by("pk")
    last = 0
    while True:
        ids = list(rows.filter(pk__gt=last).values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        last = ids[-1]
        AtRisk.objects.filter(pk__in=ids, detractor_score__isnull=True).update(details={})
        for pk, score in AtRisk.objects.filter(pk__in=ids, detractor_score__isnull=False) \
                .values_list("pk", "detractor_score"):
            AtRisk.objects.filter(pk=pk).update(details={"detractor": {"score": score}})


def backward(apps, schema_editor):
    AtRisk = apps.get_model("retention", "AtRisk")
    for pk, details in AtRisk.objects.filter(details__has_key="detractor").values_list(
            "pk", "details").iterator(chunk_size=BATCH):
        AtRisk.objects.filter(pk=pk).update(detractor_score=details["detractor"].get("score"))


class Migration(migrations.Migration):
    dependencies = [("retention", "0017_atrisk_details")]

    operations = [migrations.RunPython(forward, backward)]
