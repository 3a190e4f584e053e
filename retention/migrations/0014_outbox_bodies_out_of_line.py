"""Keep the outbox's message bodies out of its rows on PostgreSQL.

A message's row is updated three or four times on its way (claimed, sending, sent) and
each update writes a new version of the row. With the bodies (a few kB of HTML and text)
stored out of line (TOAST), those versions are a couple of hundred bytes, not kilobytes:
an update that leaves the bodies alone keeps pointing at the same stored bodies.
"""

from django.db import migrations


def store_out_of_line(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE retention_outboxmessage SET (toast_tuple_target = 256)")


def store_inline(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE retention_outboxmessage RESET (toast_tuple_target)")


class Migration(migrations.Migration):
    dependencies = [("retention", "0013_outbox_sweep_schedule")]

    operations = [migrations.RunPython(store_out_of_line, store_inline)]
