# Hand-checked for swappable models. Every occurrence of a series now has an item, booked or
# not: the items gain their planned times, a status, the reason a skipped one was not booked
# and the matched session or waitlist entry; the booking becomes optional. Items written
# before this migration always had a booking; they take its times and stay "booked".

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def copy_booking_times(apps, schema_editor):
    item_model = apps.get_model("liveclass_booking", "BookingSeriesItem")
    for item in item_model.objects.select_related("booking").iterator():
        item.start_at_utc = item.booking.start_at_utc
        item.end_at_utc = item.booking.end_at_utc
        item.save(update_fields=["start_at_utc", "end_at_utc"])


class Migration(migrations.Migration):
    dependencies = [
        ("liveclass_booking", "0003_one_on_one_overlap_exclusion"),
        migrations.swappable_dependency(settings.LIVECLASS_BOOKING_SESSION_MODEL),
        migrations.swappable_dependency(settings.LIVECLASS_BOOKING_BOOKING_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="bookingseriesitem",
            name="code",
            field=models.CharField(
                blank=True,
                help_text="The error code that kept a skipped occurrence from being booked.",
                max_length=40,
                verbose_name="reason code",
            ),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="end_at_utc",
            field=models.DateTimeField(null=True, verbose_name="ends at (UTC)"),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="session",
            field=models.ForeignKey(
                blank=True,
                help_text="For a group series: the session matched to this occurrence.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="series_items",
                to=settings.LIVECLASS_BOOKING_SESSION_MODEL,
                verbose_name="session",
            ),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="start_at_utc",
            field=models.DateTimeField(null=True, verbose_name="starts at (UTC)"),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="status",
            field=models.CharField(
                choices=[
                    ("booked", "Booked"),
                    ("waitlisted", "On the waitlist"),
                    ("awaiting_session", "Waiting for a session"),
                    ("skipped", "Skipped"),
                    ("paused", "Paused"),
                    ("cancelled", "Cancelled"),
                ],
                default="booked",
                max_length=20,
                verbose_name="status",
            ),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, verbose_name="updated at"),
        ),
        migrations.AddField(
            model_name="bookingseriesitem",
            name="waitlist_entry",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="series_items",
                to="liveclass_booking.sessionwaitlist",
                verbose_name="waitlist entry",
            ),
        ),
        migrations.RunPython(copy_booking_times, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="bookingseriesitem",
            name="start_at_utc",
            field=models.DateTimeField(verbose_name="starts at (UTC)"),
        ),
        migrations.AlterField(
            model_name="bookingseriesitem",
            name="end_at_utc",
            field=models.DateTimeField(verbose_name="ends at (UTC)"),
        ),
        migrations.AlterField(
            model_name="bookingseriesitem",
            name="booking",
            field=models.ForeignKey(
                blank=True,
                help_text="The occurrence's current booking (a rescheduled one points at the new).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="series_items",
                to=settings.LIVECLASS_BOOKING_BOOKING_MODEL,
                verbose_name="booking",
            ),
        ),
        migrations.AddIndex(
            model_name="bookingseriesitem",
            index=models.Index(
                fields=["status", "start_at_utc"], name="liveclass_b_status_24a8a9_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="bookingseriesitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("end_at_utc__gt", models.F("start_at_utc"))),
                name="liveclass_booking_bookingseriesitem_item_end_after_start",
                violation_error_message="An occurrence must end after it starts.",
            ),
        ),
        migrations.AddConstraint(
            model_name="bookingseriesitem",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "booked"), _negated=True),
                    ("booking__isnull", False),
                    _connector="OR",
                ),
                name="liveclass_booking_bookingseriesitem_booked_item_has_booking",
                violation_error_message="A booked occurrence needs its booking.",
            ),
        ),
        migrations.AddConstraint(
            model_name="bookingseriesitem",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "status__in",
                        [
                            "booked",
                            "waitlisted",
                            "awaiting_session",
                            "skipped",
                            "paused",
                            "cancelled",
                        ],
                    )
                ),
                name="liveclass_booking_bookingseriesitem_status_valid",
                violation_error_message="status must be one of: booked, waitlisted, awaiting_session, skipped, paused, cancelled.",
            ),
        ),
    ]
