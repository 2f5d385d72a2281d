# The transactional outbox: notification events and their deliveries.

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("liveclass_booking", "0005_bounds_and_approval_timeout"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(settings.LIVECLASS_BOOKING_SESSION_MODEL),
        migrations.swappable_dependency(settings.LIVECLASS_BOOKING_BOOKING_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("booking_requested", "Booking requested"),
                            ("booking_confirmed", "Booking confirmed"),
                            ("booking_declined", "Booking declined"),
                            ("booking_cancelled", "Booking cancelled"),
                            ("booking_rescheduled", "Booking rescheduled"),
                            ("booking_expired", "Request expired undecided"),
                            ("attendance_marked", "Attendance marked"),
                            ("session_cancelled", "Session cancelled"),
                            ("session_moved", "Session moved"),
                            ("session_details_changed", "Meeting details changed"),
                            ("waitlist_offered", "Waitlist seat offered"),
                            ("waitlist_offer_expired", "Waitlist offer expired"),
                            ("waitlist_closed", "Waitlist closed"),
                            ("waitlist_accepted", "Waitlist offer accepted"),
                            ("series_created", "Series created"),
                            ("series_paused", "Series paused"),
                            ("series_resumed", "Series resumed"),
                            ("series_cancelled", "Series cancelled"),
                            ("series_extended", "Series extended"),
                            ("reminder", "Reminder"),
                        ],
                        max_length=40,
                        verbose_name="kind",
                    ),
                ),
                (
                    "recipients",
                    models.JSONField(blank=True, default=list, verbose_name="recipients"),
                ),
                (
                    "data",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        encoder=django.core.serializers.json.DjangoJSONEncoder,
                        verbose_name="data",
                    ),
                ),
                (
                    "key",
                    models.CharField(
                        blank=True,
                        help_text="Set on events that may exist only once, such as one reminder.",
                        max_length=200,
                        null=True,
                        unique=True,
                        verbose_name="key",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="created at"
                    ),
                ),
                (
                    "expanded_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When the dispatcher made this event's deliveries; empty: not yet.",
                        null=True,
                        verbose_name="deliveries made at",
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        help_text="Who made the change; empty: the system.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="actor",
                    ),
                ),
                (
                    "booking",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.LIVECLASS_BOOKING_BOOKING_MODEL,
                        verbose_name="booking",
                    ),
                ),
                (
                    "series",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="liveclass_booking.bookingseries",
                        verbose_name="series",
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.LIVECLASS_BOOKING_SESSION_MODEL,
                        verbose_name="session",
                    ),
                ),
                (
                    "waitlist_entry",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="liveclass_booking.sessionwaitlist",
                        verbose_name="waitlist entry",
                    ),
                ),
            ],
            options={
                "verbose_name": "notification event",
                "verbose_name_plural": "notification events",
                "ordering": ("created_at", "pk"),
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="NotificationDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "channel",
                    models.CharField(default="email", max_length=30, verbose_name="channel"),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sent", "Sent"),
                            ("failed", "Failed (retries used up)"),
                            ("skipped", "Skipped (opted out or no longer due)"),
                        ],
                        default="pending",
                        max_length=20,
                        verbose_name="status",
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0, verbose_name="attempts")),
                ("last_error", models.TextField(blank=True, verbose_name="last error")),
                (
                    "next_attempt_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="next attempt at"
                    ),
                ),
                (
                    "claimed_until",
                    models.DateTimeField(
                        blank=True,
                        help_text="A dispatcher holds this delivery until then (its lease).",
                        null=True,
                        verbose_name="claimed until",
                    ),
                ),
                (
                    "claim_token",
                    models.CharField(blank=True, max_length=40, verbose_name="claim token"),
                ),
                ("sent_at", models.DateTimeField(blank=True, null=True, verbose_name="sent at")),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="created at"
                    ),
                ),
                (
                    "recipient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="recipient",
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="liveclass_booking.notificationevent",
                        verbose_name="event",
                    ),
                ),
            ],
            options={
                "verbose_name": "notification delivery",
                "verbose_name_plural": "notification deliveries",
                "ordering": ("created_at", "pk"),
                "abstract": False,
            },
        ),
        migrations.AddIndex(
            model_name="notificationevent",
            index=models.Index(
                fields=["expanded_at", "created_at"], name="liveclass_b_expande_8ecd97_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="notificationevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "kind__in",
                        [
                            "booking_requested",
                            "booking_confirmed",
                            "booking_declined",
                            "booking_cancelled",
                            "booking_rescheduled",
                            "booking_expired",
                            "attendance_marked",
                            "session_cancelled",
                            "session_moved",
                            "session_details_changed",
                            "waitlist_offered",
                            "waitlist_offer_expired",
                            "waitlist_closed",
                            "waitlist_accepted",
                            "series_created",
                            "series_paused",
                            "series_resumed",
                            "series_cancelled",
                            "series_extended",
                            "reminder",
                        ],
                    )
                ),
                name="liveclass_booking_notificationevent_kind_valid",
                violation_error_message="kind must be one of: booking_requested, booking_confirmed, booking_declined, booking_cancelled, booking_rescheduled, booking_expired, attendance_marked, session_cancelled, session_moved, session_details_changed, waitlist_offered, waitlist_offer_expired, waitlist_closed, waitlist_accepted, series_created, series_paused, series_resumed, series_cancelled, series_extended, reminder.",
            ),
        ),
        migrations.AddIndex(
            model_name="notificationdelivery",
            index=models.Index(
                fields=["status", "next_attempt_at"], name="liveclass_b_status_f990f7_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="notificationdelivery",
            constraint=models.UniqueConstraint(
                fields=("event", "recipient", "channel"),
                name="liveclass_booking_notificationdelivery_event_recipient_uniq",
                violation_error_message="This event already goes to this recipient.",
            ),
        ),
        migrations.AddConstraint(
            model_name="notificationdelivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "sent", "failed", "skipped"])),
                name="liveclass_booking_notificationdelivery_status_valid",
                violation_error_message="status must be one of: pending, sent, failed, skipped.",
            ),
        ),
    ]
