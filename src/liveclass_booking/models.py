"""Concrete default models and the helpers that return the models active in this project.

``Course``, ``LiveClassSession`` and ``LiveClassBooking`` are swappable: a host points
``LIVECLASS_BOOKING_COURSE_MODEL``, ``LIVECLASS_BOOKING_SESSION_MODEL`` or
``LIVECLASS_BOOKING_BOOKING_MODEL`` at its own model **before its first migrate**. Code that
needs one of them calls :func:`get_course_model`, :func:`get_session_model` or
:func:`get_booking_model` rather than importing the default class.
"""

from __future__ import annotations

from django.apps import apps as django_apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .abstract import (
    WAITLIST_QUEUE_ORDER,
    AbstractAvailabilityException,
    AbstractBookingEvent,
    AbstractBookingSeries,
    AbstractBookingSeriesItem,
    AbstractBusyPeriod,
    AbstractBusySource,
    AbstractCalendarFeedToken,
    AbstractCourse,
    AbstractIdempotencyKey,
    AbstractLegacyImport,
    AbstractLiveClassBooking,
    AbstractLiveClassSession,
    AbstractNotificationDelivery,
    AbstractNotificationEvent,
    AbstractSessionWaitlist,
    AbstractTeacherAvailability,
    AbstractTeacherBookingPolicy,
)
from .conf import booking_settings

__all__ = [
    "WAITLIST_QUEUE_ORDER",
    "AvailabilityException",
    "BookingEvent",
    "BookingSeries",
    "BookingSeriesItem",
    "BusyPeriod",
    "BusySource",
    "CalendarFeedToken",
    "Course",
    "IdempotencyKey",
    "LegacyImport",
    "LiveClassBooking",
    "LiveClassSession",
    "NotificationDelivery",
    "NotificationEvent",
    "SessionWaitlist",
    "TeacherAvailability",
    "TeacherBookingPolicy",
    "get_booking_model",
    "get_course_model",
    "get_session_model",
]


class Course(AbstractCourse):
    class Meta(AbstractCourse.Meta):
        swappable = "LIVECLASS_BOOKING_COURSE_MODEL"


class LiveClassSession(AbstractLiveClassSession):
    class Meta(AbstractLiveClassSession.Meta):
        swappable = "LIVECLASS_BOOKING_SESSION_MODEL"


class LiveClassBooking(AbstractLiveClassBooking):
    class Meta(AbstractLiveClassBooking.Meta):
        swappable = "LIVECLASS_BOOKING_BOOKING_MODEL"


class TeacherBookingPolicy(AbstractTeacherBookingPolicy):
    class Meta(AbstractTeacherBookingPolicy.Meta):
        pass


class BookingSeries(AbstractBookingSeries):
    class Meta(AbstractBookingSeries.Meta):
        pass


class BookingSeriesItem(AbstractBookingSeriesItem):
    class Meta(AbstractBookingSeriesItem.Meta):
        pass


class SessionWaitlist(AbstractSessionWaitlist):
    class Meta(AbstractSessionWaitlist.Meta):
        pass


class TeacherAvailability(AbstractTeacherAvailability):
    class Meta(AbstractTeacherAvailability.Meta):
        pass


class AvailabilityException(AbstractAvailabilityException):
    class Meta(AbstractAvailabilityException.Meta):
        pass


class BookingEvent(AbstractBookingEvent):
    class Meta(AbstractBookingEvent.Meta):
        pass


class IdempotencyKey(AbstractIdempotencyKey):
    class Meta(AbstractIdempotencyKey.Meta):
        pass


class LegacyImport(AbstractLegacyImport):
    class Meta(AbstractLegacyImport.Meta):
        pass


class NotificationEvent(AbstractNotificationEvent):
    class Meta(AbstractNotificationEvent.Meta):
        pass


class NotificationDelivery(AbstractNotificationDelivery):
    class Meta(AbstractNotificationDelivery.Meta):
        pass


class CalendarFeedToken(AbstractCalendarFeedToken):
    class Meta(AbstractCalendarFeedToken.Meta):
        pass


class BusySource(AbstractBusySource):
    class Meta(AbstractBusySource.Meta):
        pass


class BusyPeriod(AbstractBusyPeriod):
    class Meta(AbstractBusyPeriod.Meta):
        pass


def model_for_setting(setting: str, label: str) -> type[models.Model]:
    """The model ``label`` (``app_label.ModelName``) that the model setting ``setting``
    names; ``ImproperlyConfigured`` naming the setting when it is malformed or missing."""
    try:
        return django_apps.get_model(label, require_ready=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{setting} must be of the form 'app_label.ModelName', not {label!r}."
        ) from exc
    except LookupError as exc:
        raise ImproperlyConfigured(
            f"{setting} refers to model {label!r}, which is not installed."
        ) from exc


def get_course_model() -> type[models.Model]:
    """Return the course model active in this project."""
    return model_for_setting("LIVECLASS_BOOKING_COURSE_MODEL", booking_settings.COURSE_MODEL)


def get_session_model() -> type[AbstractLiveClassSession]:
    """Return the live-class session model active in this project."""
    model = model_for_setting("LIVECLASS_BOOKING_SESSION_MODEL", booking_settings.SESSION_MODEL)
    return model  # type: ignore[return-value]


def get_booking_model() -> type[AbstractLiveClassBooking]:
    """Return the booking model active in this project."""
    model = model_for_setting("LIVECLASS_BOOKING_BOOKING_MODEL", booking_settings.BOOKING_MODEL)
    return model  # type: ignore[return-value]
