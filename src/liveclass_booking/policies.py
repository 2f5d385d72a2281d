"""Policy hooks (docs/policies.md).

``LIVECLASS_BOOKING_POLICY_RESOLVER`` names a class; a host subclasses
:class:`DefaultPolicyResolver` and overrides the methods it needs, for example ``can_book`` to
require an enrollment. :func:`get_policy_resolver` returns the configured instance.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Model, Q, QuerySet
from django.utils.module_loading import import_string

from .conf import booking_settings
from .models import (
    TeacherAvailability,
    TeacherBookingPolicy,
    get_course_model,
    get_session_model,
)
from .permissions import change_permission, object_permission
from .prepared import Param, Prepared
from .validators import is_valid_timezone


def _policy_fields() -> list[str]:
    return [field.attname for field in TeacherBookingPolicy._meta.concrete_fields]


def _policy_of(with_course: bool) -> QuerySet[TeacherBookingPolicy]:
    """The policy rows of a teacher (placeholder ``teacher``) that apply to a course
    (placeholder ``course``; without ``with_course``, none): the course's row first."""
    scope = Q(course__isnull=True)
    if with_course:
        scope |= Q(course_id=Param("course", get_course_model()._meta.pk))
    teacher = Param("teacher", get_user_model()._meta.pk)
    return (
        TeacherBookingPolicy.objects.filter(scope, teacher_id=teacher)
        .order_by(F("course").asc(nulls_last=True))
        .values_list(*_policy_fields())[:1]
    )


#: :func:`_policy_of`, compiled: by whether a course is given.
_POLICY = {with_course: Prepared(partial(_policy_of, with_course)) for with_course in (False, True)}


def _is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False))


class DefaultPolicyResolver:
    """The rules the library applies unless the host overrides them."""

    def get_policy(self, teacher: Any, course: Model | None) -> TeacherBookingPolicy:
        """Return the effective policy of ``teacher`` for ``course``.

        The (teacher, course) row wins, then the teacher's default row (course empty), then an
        unsaved policy built from ``LIVECLASS_BOOKING_DEFAULT_POLICY``.
        """
        prepared = _POLICY[course is not None]
        using = prepared.alias()
        found = prepared.rows(using=using, teacher=teacher.pk, course=getattr(course, "pk", None))
        policy = TeacherBookingPolicy.from_db(using, _policy_fields(), found[0]) if found else None
        if policy is None:
            policy = TeacherBookingPolicy(
                teacher=teacher, course=None, **booking_settings.DEFAULT_POLICY
            )
        return policy

    def can_book(self, student: Any, course: Model | None, session: Model | None = None) -> bool:
        """Return whether ``student`` may book ``course`` (or ``session``). Default: yes."""
        return True

    def check_booking(self, attempt: Any) -> None:
        """Refuse a booking for a rule of the host's own by raising
        :class:`~liveclass_booking.exceptions.BookingRefused` with the host's code and
        message (the API answers it as an error body with that code, 403 unless the
        refusal names another 4xx status). Return to let it through. Default: allow.

        ``attempt`` is a :class:`~liveclass_booking.services.attempts.BookingAttempt`: the
        student, teacher, course, session (None for a lesson), start and end, seats, and
        ``how`` it comes to exist — ``book``, ``request``, ``series`` (with ``series`` and
        ``occurrence``), ``reschedule`` (with ``rescheduled_from``) or ``waitlist`` (with
        ``waitlist_entry``). It is called once for every booking row, inside the booking's
        transaction after the student's (and for lessons the teacher's) row is locked, so
        counting the student's bookings here is race-free. A refused series occurrence is
        skipped with the host's code (or fails an all-or-nothing series)."""
        return None

    def get_lesson_meeting(self, booking: Any) -> dict[str, str]:
        """Return the meeting details (any of ``meeting_link``, ``meeting_id``,
        ``meeting_passcode``) a one-on-one lesson gets when it is confirmed without the
        teacher giving them: booked without approval, or approved with none. ``booking`` is
        the lesson (unsaved when it is confirmed at once), with ``teacher``, ``course``,
        ``student_user`` and its times. Default: none (``{}``); a host returns, say, the
        teacher's personal meeting room."""
        return {}

    def get_limits(self, student: Any, teacher: Any, course: Model | None) -> dict[str, Any]:
        """Return the per-account limits that apply when ``student`` books with ``teacher``
        for ``course`` (the library always passes the course of the session, lesson or
        series, never None).

        Keys: ``seats_per_booking``, ``active_bookings_per_student``,
        ``pending_requests_per_teacher``, ``open_waitlist_entries_per_student``,
        ``active_series_per_student``; a value of None lifts that limit. Default:
        ``LIVECLASS_BOOKING_LIMITS`` over the built-in defaults. Override it to raise a
        limit for one teacher or course, e.g. ``{**super().get_limits(...),
        "seats_per_booking": 30}``.
        """
        return booking_settings.LIMITS

    def can_teach(self, user: Any, course: Model | None) -> bool:
        """Return whether ``user`` may run sessions and offer availability for ``course``
        (None for a policy or availability row without a course, and for a slot listing
        without one).

        Default: staff, or users holding the ``add`` permission of the session model.
        """
        if not getattr(user, "is_active", False):
            return False
        opts = get_session_model()._meta
        return bool(user.is_staff or user.has_perm(f"{opts.app_label}.add_{opts.model_name}"))

    def can_manage(self, user: Any, obj: Model) -> bool:
        """Return whether ``user`` may act as the teacher of ``obj``.

        ``obj`` is a session, booking, series, policy, availability window or availability
        exception (possibly unsaved, when it is being created or changed). Acting as its
        teacher means editing, cancelling or completing a session, approving or declining a
        booking, cancelling it as the teacher, marking attendance, and managing policies and
        availability.

        Default: the object's teacher and staff, adjusted by the authentication backends
        for the ``change`` permission of the object's model on ``obj`` (see
        :mod:`liveclass_booking.permissions`).
        """
        role = bool(_is_staff(user) or user.pk == getattr(obj, "teacher_id", None))
        return object_permission(user, change_permission(obj), obj, default=role)

    def visible_bookings(self, user: Any, bookings: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow ``bookings`` to what ``user`` may see (lists, details and actions in the API).

        Default: students their own, teachers the ones they teach, staff all.
        """
        if _is_staff(user):
            return bookings
        return bookings.filter(Q(student_user=user) | Q(teacher=user))

    def visible_policies(
        self, user: Any, policies: QuerySet[TeacherBookingPolicy]
    ) -> QuerySet[TeacherBookingPolicy]:
        """Narrow ``policies`` to what ``user`` may see. Default: own rows; staff all."""
        return policies if _is_staff(user) else policies.filter(teacher=user)

    def visible_availability(
        self, user: Any, windows: QuerySet[TeacherAvailability]
    ) -> QuerySet[TeacherAvailability]:
        """Narrow availability ``windows`` to what ``user`` may see. Default: own; staff all."""
        return windows if _is_staff(user) else windows.filter(teacher=user)

    def visible_waitlist(self, user: Any, entries: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow waitlist ``entries`` to what ``user`` may see.

        Default: students their own entries, teachers the queues of the sessions they teach,
        staff all.
        """
        if _is_staff(user):
            return entries
        return entries.filter(Q(student_user=user) | Q(session__teacher=user))

    def visible_series(self, user: Any, series: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow booking ``series`` to what ``user`` may see.

        Default: students their own series, teachers the series they teach, staff all.
        """
        if _is_staff(user):
            return series
        return series.filter(Q(student_user=user) | Q(teacher=user))

    def get_user_timezone(self, user: Any) -> str:
        """Return the IANA zone for ``user``: a valid ``user.timezone``, else ``TIME_ZONE``."""
        candidate = getattr(user, "timezone", None)
        if isinstance(candidate, str) and is_valid_timezone(candidate):
            return candidate
        return settings.TIME_ZONE if is_valid_timezone(settings.TIME_ZONE) else "UTC"

    def get_display_name(self, user: Any) -> str:
        """Return how ``user`` is named to others (in messages and calendar entries):
        ``get_full_name()`` when it gives one, else the username. Must not query the
        database per user (it runs for every student of a teacher's calendar feed)."""
        full = user.get_full_name() if hasattr(user, "get_full_name") else ""
        return str(full or user.get_username())

    def get_user_language(self, user: Any) -> str:
        """Return the language code messages to ``user`` are written in: a ``user.language``
        (or ``language_code``) attribute when set, else ``LANGUAGE_CODE``."""
        for name in ("language", "language_code"):
            candidate = getattr(user, name, None)
            if isinstance(candidate, str) and candidate:
                return candidate
        return str(settings.LANGUAGE_CODE)

    def notification_recipients(self, event: Any, users: list[Any]) -> list[Any]:
        """Return who hears ``event`` (a ``NotificationEvent``): ``users`` are the people
        the library chose (see docs/notifications.md). Default: those of them who are
        active. Override to add people (a guardian, a course assistant) or remove some."""
        return [user for user in users if getattr(user, "is_active", True)]

    def wants_notification(self, user: Any, kind: str, channel: str) -> bool:
        """Return whether ``user`` wants messages of ``kind`` on ``channel`` (an opt-out per
        kind). A delivery nobody wants is recorded as ``skipped``. Default: yes."""
        return True

    def get_reminder_offsets(self, booking: Any) -> list[timedelta]:
        """Return how long before ``booking`` starts its reminders go out (an empty list:
        none). Default: ``LIVECLASS_BOOKING_REMINDER_OFFSETS``. Offsets beyond the largest
        of that setting are not looked for."""
        return booking_settings.REMINDER_OFFSETS


@lru_cache(maxsize=8)
def _resolver_for(path: str) -> DefaultPolicyResolver:
    resolver: DefaultPolicyResolver = import_string(path)()
    return resolver


def get_policy_resolver() -> DefaultPolicyResolver:
    """Return the policy resolver named by ``LIVECLASS_BOOKING_POLICY_RESOLVER``."""
    return _resolver_for(booking_settings.POLICY_RESOLVER)


def display_name(user: Any) -> str:
    """``user``'s name as the resolver's ``get_display_name`` gives it ("" for no user)."""
    return "" if user is None else get_policy_resolver().get_display_name(user)
