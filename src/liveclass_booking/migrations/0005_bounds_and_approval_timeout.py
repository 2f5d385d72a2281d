"""Bounds on every policy number (validators and CHECK constraints), on free text and on
capacity; the approval timeout (a policy field, and each pending booking's deadline); the
``expired`` booking status.

Existing rows are brought inside the new rules before the constraints are added: policy
numbers above their new maximum are lowered to it, and pending bookings of the default
booking model get a deadline one approval timeout from now (never after their start), so an
upgrade does not expire old requests at once. (A swapped booking model gets the column from
its own app's migration; ``liveclass_booking_expire_requests`` gives its pending rows a
deadline the same way.)
"""

from datetime import timedelta

import django.core.validators
from django.conf import settings
from django.db import migrations, models

import liveclass_booking.abstract

BOUNDS = {
    "min_notice_hours": (0, 8760),
    "cancel_window_hours": (0, 8760),
    "buffer_before_minutes": (0, 1440),
    "buffer_after_minutes": (0, 1440),
    "max_bookings_per_day": (1, 1000),
    "approval_timeout_hours": (1, 8760),
}


def bring_rows_inside_bounds(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        # Check foreign keys at once, so no trigger events are pending when the constraints
        # are added to the tables just updated (PostgreSQL refuses to alter those).
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    try:
        _bring_rows_inside_bounds(apps, schema_editor)
    finally:
        if postgres:
            schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def _bring_rows_inside_bounds(apps, schema_editor):
    from django.utils import timezone

    from liveclass_booking.conf import booking_settings

    Policy = apps.get_model("liveclass_booking", "TeacherBookingPolicy")
    policies = Policy.objects.using(schema_editor.connection.alias)
    for field, (low, high) in BOUNDS.items():
        policies.filter(**{f"{field}__gt": high}).update(**{field: high})
        policies.filter(**{f"{field}__lt": low}).update(**{field: low})

    Booking = apps.get_model("liveclass_booking", "LiveClassBooking")
    if Booking._meta.swapped:
        return
    bookings = Booking.objects.using(schema_editor.connection.alias)
    now = timezone.now()
    default_hours = booking_settings.DEFAULT_POLICY["approval_timeout_hours"]
    rows = {(p.teacher_id, p.course_id): p.approval_timeout_hours for p in policies.all()}
    pending = bookings.filter(status="pending", approval_expires_at__isnull=True)
    for booking in pending.iterator():
        hours = rows.get(
            (booking.teacher_id, booking.course_id),
            rows.get((booking.teacher_id, None), default_hours),
        )
        deadline = min(now + timedelta(hours=hours), booking.start_at_utc)
        bookings.filter(pk=booking.pk).update(approval_expires_at=deadline)


class Migration(migrations.Migration):
    dependencies = [
        ("liveclass_booking", "0004_series_items_per_occurrence"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="liveclassbooking",
            name="liveclass_booking_liveclassbooking_status_valid",
        ),
        migrations.AddField(
            model_name="liveclassbooking",
            name="approval_expires_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="A pending booking not decided by then expires by itself (the policy's approval timeout, never after the start).",
                null=True,
                verbose_name="approval expires at",
            ),
        ),
        migrations.AddField(
            model_name="teacherbookingpolicy",
            name="approval_timeout_hours",
            field=models.PositiveIntegerField(
                default=liveclass_booking.abstract.PolicyDefault("approval_timeout_hours"),
                help_text="A request not approved or declined within this many hours expires by itself (at the latest when the booking would start).",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(8760),
                ],
                verbose_name="approval timeout (hours)",
            ),
        ),
        migrations.AlterField(
            model_name="liveclassbooking",
            name="cancel_reason",
            field=models.TextField(
                blank=True,
                validators=[django.core.validators.MaxLengthValidator(5000)],
                verbose_name="cancel reason",
            ),
        ),
        migrations.AlterField(
            model_name="liveclassbooking",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("confirmed", "Confirmed"),
                    ("declined", "Declined"),
                    ("cancelled", "Cancelled"),
                    ("attended", "Attended"),
                    ("no_show", "No-show"),
                    ("rescheduled", "Rescheduled"),
                    ("expired", "Expired (not decided in time)"),
                ],
                default="pending",
                max_length=20,
                verbose_name="status",
            ),
        ),
        migrations.AlterField(
            model_name="liveclassbooking",
            name="student_note",
            field=models.TextField(
                blank=True,
                validators=[django.core.validators.MaxLengthValidator(5000)],
                verbose_name="student note",
            ),
        ),
        migrations.AlterField(
            model_name="liveclassbooking",
            name="teacher_note",
            field=models.TextField(
                blank=True,
                validators=[django.core.validators.MaxLengthValidator(5000)],
                verbose_name="teacher note",
            ),
        ),
        migrations.AlterField(
            model_name="liveclasssession",
            name="capacity",
            field=models.PositiveIntegerField(
                validators=[django.core.validators.MaxValueValidator(10000)],
                verbose_name="capacity",
            ),
        ),
        migrations.AlterField(
            model_name="liveclasssession",
            name="description",
            field=models.TextField(
                blank=True,
                validators=[django.core.validators.MaxLengthValidator(5000)],
                verbose_name="description",
            ),
        ),
        migrations.AlterField(
            model_name="teacherbookingpolicy",
            name="buffer_after_minutes",
            field=models.PositiveIntegerField(
                default=liveclass_booking.abstract.PolicyDefault("buffer_after_minutes"),
                validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(1440),
                ],
                verbose_name="buffer after (minutes)",
            ),
        ),
        migrations.AlterField(
            model_name="teacherbookingpolicy",
            name="buffer_before_minutes",
            field=models.PositiveIntegerField(
                default=liveclass_booking.abstract.PolicyDefault("buffer_before_minutes"),
                validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(1440),
                ],
                verbose_name="buffer before (minutes)",
            ),
        ),
        migrations.AlterField(
            model_name="teacherbookingpolicy",
            name="cancel_window_hours",
            field=models.PositiveIntegerField(
                default=liveclass_booking.abstract.PolicyDefault("cancel_window_hours"),
                help_text="Students may cancel until this many hours before the start.",
                validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(8760),
                ],
                verbose_name="cancel window (hours)",
            ),
        ),
        migrations.AlterField(
            model_name="teacherbookingpolicy",
            name="max_bookings_per_day",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Counted in the teacher's local day. Empty: no limit.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(1000),
                ],
                verbose_name="maximum bookings per day",
            ),
        ),
        migrations.AlterField(
            model_name="teacherbookingpolicy",
            name="min_notice_hours",
            field=models.PositiveIntegerField(
                default=liveclass_booking.abstract.PolicyDefault("min_notice_hours"),
                validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(8760),
                ],
                verbose_name="minimum notice (hours)",
            ),
        ),
        migrations.RunPython(bring_rows_inside_bounds, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="liveclassbooking",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "status__in",
                        [
                            "pending",
                            "confirmed",
                            "declined",
                            "cancelled",
                            "attended",
                            "no_show",
                            "rescheduled",
                            "expired",
                        ],
                    )
                ),
                name="liveclass_booking_liveclassbooking_status_valid",
                violation_error_message="status must be one of: pending, confirmed, declined, cancelled, attended, no_show, rescheduled, expired.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(("min_notice_hours__gte", 0), ("min_notice_hours__lte", 8760)),
                name="liveclass_booking_teacherbookingpolicy_min_notice_hours_range",
                violation_error_message="min_notice_hours must be between 0 and 8760.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cancel_window_hours__gte", 0), ("cancel_window_hours__lte", 8760)
                ),
                name="liveclass_booking_teacherbookingpolicy_cancel_window_hours_range",
                violation_error_message="cancel_window_hours must be between 0 and 8760.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("buffer_before_minutes__gte", 0), ("buffer_before_minutes__lte", 1440)
                ),
                name="liveclass_booking_teacherbookingpolicy_buffer_before_range",
                violation_error_message="buffer_before_minutes must be between 0 and 1440.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("buffer_after_minutes__gte", 0), ("buffer_after_minutes__lte", 1440)
                ),
                name="liveclass_booking_teacherbookingpolicy_buffer_after_range",
                violation_error_message="buffer_after_minutes must be between 0 and 1440.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("max_bookings_per_day__gte", 1), ("max_bookings_per_day__lte", 1000)),
                    ("max_bookings_per_day__isnull", True),
                    _connector="OR",
                ),
                name="liveclass_booking_teacherbookingpolicy_max_per_day_range",
                violation_error_message="max_bookings_per_day must be between 1 and 1000.",
            ),
        ),
        migrations.AddConstraint(
            model_name="teacherbookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("approval_timeout_hours__gte", 1), ("approval_timeout_hours__lte", 8760)
                ),
                name="liveclass_booking_teacherbookingpolicy_approval_timeout_range",
                violation_error_message="approval_timeout_hours must be between 1 and 8760.",
            ),
        ),
    ]
