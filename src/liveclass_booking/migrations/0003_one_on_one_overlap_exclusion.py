"""On PostgreSQL, refuse two overlapping active one-on-one bookings of one teacher in the
database itself: an exclusion constraint over the buffered range each booking blocks.

Applied to the active booking model, swapped or not. Other databases rely on the services'
per-teacher lock (see docs/concurrency.md).

A database written before the constraint may already hold overlapping active lessons of one
teacher; the constraint cannot be added over them, and which of two lessons should give way
is a person's decision. The migration then stops with a message naming every overlapping
pair, changing nothing; cancel or move one lesson of each pair and run ``migrate`` again.
"""

from django.conf import settings
from django.db import migrations

import liveclass_booking.conf  # noqa: F401  (writes default model settings)


def _names(apps, schema_editor):
    model = apps.get_model(settings.LIVECLASS_BOOKING_BOOKING_MODEL)
    quote = schema_editor.quote_name
    column = lambda name: quote(model._meta.get_field(name).column)  # noqa: E731
    table = model._meta.db_table
    return {
        "table": quote(table),
        "name": quote(f"{table}_1on1_no_overlap"[:63]),
        "teacher": column("teacher"),
        "start": column("blocked_from_utc"),
        "end": column("blocked_until_utc"),
        "type": column("booking_type"),
        "status": column("status"),
    }


OVERLAPS = (
    "SELECT a.{pk}, b.{pk} FROM {table} a JOIN {table} b ON a.{teacher} = b.{teacher} "
    "AND a.{pk} < b.{pk} "
    "AND tstzrange(a.{start}, a.{end}, '[)') && tstzrange(b.{start}, b.{end}, '[)') "
    "WHERE a.{type} = 'one_on_one' AND b.{type} = 'one_on_one' "
    "AND a.{status} IN ('pending', 'confirmed') AND b.{status} IN ('pending', 'confirmed') "
    "ORDER BY 1, 2"
)


def add_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    names = _names(apps, schema_editor)
    model = apps.get_model(settings.LIVECLASS_BOOKING_BOOKING_MODEL)
    names["pk"] = schema_editor.quote_name(model._meta.pk.column)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(OVERLAPS.format(**names))
        pairs = cursor.fetchall()
    if pairs:
        listed = ", ".join(f"{a} and {b}" for a, b in pairs[:50])
        more = f" (and {len(pairs) - 50} more pairs)" if len(pairs) > 50 else ""
        raise RuntimeError(
            f"{len(pairs)} pair(s) of active one-on-one bookings of one teacher overlap "
            f"(buffers included): bookings {listed}{more}. Cancel or move one booking of each "
            "pair (for example in the admin), then run migrate again; nothing was changed."
        )
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        "ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist "
        "({teacher} WITH =, tstzrange({start}, {end}, '[)') WITH &&) "
        "WHERE ({type} = 'one_on_one' AND {status} IN ('pending', 'confirmed'))".format(**names)
    )


def drop_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}".format(**_names(apps, schema_editor))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("liveclass_booking", "0002_booking_links_and_related"),
        migrations.swappable_dependency(settings.LIVECLASS_BOOKING_BOOKING_MODEL),
    ]

    operations = [migrations.RunPython(add_exclusion, drop_exclusion, elidable=False)]
