"""Status and type values. Their stored values are part of the public contract (docs/models.md)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MeetingProvider(models.TextChoices):
    ZOOM = "zoom", _("Zoom")
    GOOGLE_MEET = "google_meet", _("Google Meet")
    MICROSOFT_TEAMS = "microsoft_teams", _("Microsoft Teams")
    CUSTOM = "custom", _("Custom")


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")


class BookingType(models.TextChoices):
    GROUP_SESSION = "group_session", _("Group session")
    ONE_ON_ONE = "one_on_one", _("One-on-one")


class BookingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CONFIRMED = "confirmed", _("Confirmed")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("No-show")
    RESCHEDULED = "rescheduled", _("Rescheduled")
    EXPIRED = "expired", _("Expired (not decided in time)")


#: Statuses that hold a seat or a teacher's time.
ACTIVE_BOOKING_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class SeriesType(models.TextChoices):
    ONE_ON_ONE_SERIES = "one_on_one_series", _("One-on-one series")
    GROUP_SERIES = "group_series", _("Group series")


class SeriesStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")


class SeriesItemStatus(models.TextChoices):
    """Where one occurrence of a series stands. A ``booked`` occurrence's own state is its
    booking's status (pending, confirmed, cancelled, attended, …)."""

    BOOKED = "booked", _("Booked")
    WAITLISTED = "waitlisted", _("On the waitlist")
    AWAITING_SESSION = "awaiting_session", _("Waiting for a session")
    SKIPPED = "skipped", _("Skipped")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")


class Frequency(models.TextChoices):
    WEEKLY = "weekly", _("Weekly")
    BIWEEKLY = "biweekly", _("Every two weeks")
    MONTHLY = "monthly", _("Monthly")
    CUSTOM = "custom", _("Custom (RRULE)")


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Offered")
    ACCEPTED = "accepted", _("Accepted")
    EXPIRED = "expired", _("Expired")
    LEFT = "left", _("Left")


#: Waitlist entries still in the queue: waiting, or holding a seat offer.
OPEN_WAITLIST_STATUSES = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class Weekday(models.IntegerChoices):
    """ISO order starting at 0, as :meth:`datetime.date.weekday` returns."""

    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class ExceptionKind(models.TextChoices):
    UNAVAILABLE = "unavailable", _("Unavailable (day or hours off)")
    AVAILABLE = "available", _("Available (extra hours)")


#: RFC 5545 day codes in Monday-first order, as ``BookingSeries.days_of_week`` stores them.
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class NotificationKind(models.TextChoices):
    """What an outbox event tells people (see docs/notifications.md for the recipients)."""

    BOOKING_REQUESTED = "booking_requested", _("Booking requested")
    BOOKING_CONFIRMED = "booking_confirmed", _("Booking confirmed")
    BOOKING_DECLINED = "booking_declined", _("Booking declined")
    BOOKING_CANCELLED = "booking_cancelled", _("Booking cancelled")
    BOOKING_RESCHEDULED = "booking_rescheduled", _("Booking rescheduled")
    BOOKING_EXPIRED = "booking_expired", _("Request expired undecided")
    ATTENDANCE_MARKED = "attendance_marked", _("Attendance marked")
    SESSION_CANCELLED = "session_cancelled", _("Session cancelled")
    SESSION_MOVED = "session_moved", _("Session moved")
    SESSION_DETAILS_CHANGED = "session_details_changed", _("Meeting details changed")
    WAITLIST_OFFERED = "waitlist_offered", _("Waitlist seat offered")
    WAITLIST_OFFER_EXPIRED = "waitlist_offer_expired", _("Waitlist offer expired")
    WAITLIST_CLOSED = "waitlist_closed", _("Waitlist closed")
    WAITLIST_ACCEPTED = "waitlist_accepted", _("Waitlist offer accepted")
    SERIES_CREATED = "series_created", _("Series created")
    SERIES_PAUSED = "series_paused", _("Series paused")
    SERIES_RESUMED = "series_resumed", _("Series resumed")
    SERIES_CANCELLED = "series_cancelled", _("Series cancelled")
    SERIES_EXTENDED = "series_extended", _("Series extended")
    REMINDER = "reminder", _("Reminder")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed (retries used up)")
    SKIPPED = "skipped", _("Skipped (opted out or no longer due)")


class LegacyKind(models.TextChoices):
    """What a legacy row became when it was imported."""

    SESSION = "session", _("Group session")
    GROUP_BOOKING = "group_booking", _("Group booking")
    LESSON = "lesson", _("One-on-one lesson")


class BusySourceKind(models.TextChoices):
    """Where a teacher's busy times are imported from."""

    ICS = "ics", _("iCalendar feed (URL)")
    CALDAV = "caldav", _("CalDAV calendar")


class BusySyncStatus(models.TextChoices):
    """How a busy source's last sync went."""

    NEW = "new", _("Not synced yet")
    OK = "ok", _("Synced")
    FAILED = "failed", _("Last sync failed (earlier busy times kept)")
