# The stored iCalendar SEQUENCE of sessions and bookings.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("swapped", "0002_bounds_and_approval_timeout"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="calendar_sequence",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="The iCalendar SEQUENCE of this booking: the services add one on every change of its time, status or meeting details; a booking that replaced another goes on from its number.",
                verbose_name="calendar sequence",
            ),
        ),
        migrations.AddField(
            model_name="classsession",
            name="calendar_sequence",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="The iCalendar SEQUENCE of this session: the services add one on every change of its time, status or meeting details.",
                verbose_name="calendar sequence",
            ),
        ),
    ]
