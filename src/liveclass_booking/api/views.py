"""Viewsets: validate the request's shape, call one service, shape the answer."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.core.paginator import Page
from django.db.models import Func, IntegerField, Prefetch, QuerySet, Subquery
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, routers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .. import services
from ..calendar.feed import booking_document, session_document
from ..models import (
    WAITLIST_QUEUE_ORDER,
    BookingSeries,
    BookingSeriesItem,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_session_model,
)
from ..querysets import (
    availability_visible_to,
    bookings_visible_to,
    policies_visible_to,
    series_visible_to,
    waitlist_visible_to,
    with_queue_positions,
)
from ..recurrence import Recurrence
from ..services import idempotency
from . import serializers as s
from .errors import exception_handler
from .fields import NotCanonical, canonical_pk, same_key
from .filters import BookingFilter, SeriesFilter, SessionFilter, WaitlistFilter
from .ics import AnyAccept, calendar_response, calendar_schema, in_language_of
from .parsers import JSONParser
from .schema import extend_schema, extend_schema_view, header_parameter, operation
from .throttling import WriteRateThrottle

IDEMPOTENCY_KEY_PARAMETER = header_parameter(
    idempotency.HEADER,
    "Optional. The same key with the same body replays the first response and creates "
    "nothing; with another body it is a 409 idempotency_conflict. Per user, kept at least "
    "24 hours.",
    idempotency.MAX_KEY_LENGTH,
)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class _Total(Func):
    """``COUNT(*)`` as a plain function (no ``GROUP BY``)."""

    function = "COUNT"
    template = "%(function)s(*)"
    output_field = IntegerField()


class OneQueryPagination(Pagination):
    """Page-number pagination that reads the page and the total in one statement: the page's
    query carries the total as an uncorrelated scalar subquery, which the database computes
    once. A query that subquery would not count the same way (distinct, grouped, combined),
    and ``page=last``, are paginated as usual (a ``COUNT`` first)."""

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        page_size = self.get_page_size(request)
        raw = request.query_params.get(self.page_query_param) or 1
        query = queryset.query
        plain = not (query.distinct or query.combinator or query.group_by or query.is_sliced)
        if not page_size or not plain or raw in self.last_page_strings:
            return super().paginate_queryset(queryset, request, view)
        invalid = NotFound(self.invalid_page_message.format(page_number=raw, message=""))
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise invalid from None
        if number < 1:
            raise invalid
        total = Subquery(queryset.order_by().annotate(_n=_Total()).values("_n"))
        start = (number - 1) * page_size
        rows = list(queryset.annotate(_total_rows=total)[start : start + page_size])
        if not rows and number > 1:  # past the end
            raise invalid
        paginator = self.django_paginator_class(queryset, page_size)
        paginator.count = rows[0]._total_rows if rows else 0
        self.page = Page(rows, number, paginator)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        self.request = request
        return rows


class LiveClassViewSet(viewsets.GenericViewSet[Any]):
    """What every view of this API shares: JSON bodies, authentication, pagination, this
    API's error bodies (only for these views), and 404 for malformed ids."""

    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]
    # The host's throttles, and the write throttles of this API (LIVECLASS_BOOKING_THROTTLE_
    # RATES), whose scope each viewset names per action.
    throttle_classes: list[Any] = [*api_settings.DEFAULT_THROTTLE_CLASSES, WriteRateThrottle]
    throttle_scopes: dict[str, str] = {}

    #: How answers show the object they concern (replace it in a subclass). Actions keep
    #: their own ``serializer_class`` for their request bodies.
    response_serializer_class: Any = None

    def get_serializer_class(self) -> Any:
        """The body an action reads when it names one (``@action(serializer_class=...)``: the
        browsable API's form shows it), else how answers show the object."""
        own = self.__dict__.get("serializer_class")  # set per action by the router
        if own is not None:
            return own
        return self.response_serializer_class or super().get_serializer_class()

    def respond(self, obj: Any, code: int = status.HTTP_200_OK) -> Response:
        """Answer with ``obj`` shaped by ``response_serializer_class``."""
        serializer = self.response_serializer_class(obj, context=self.get_serializer_context())
        return Response(serializer.data, status=code)

    @property
    def schema_only(self) -> bool:
        """True while drf-spectacular inspects the view (there is no real user then)."""
        return bool(getattr(self, "swagger_fake_view", False))

    def get_exception_handler(self) -> Any:
        return exception_handler

    def get_object(self) -> Any:
        """The object of a detail route; an id not given exactly as its key renders (``02``,
        ``+2``, ``２``, an upper-case UUID) is a 404 like the id of a missing object."""
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        opts = self.get_queryset().model._meta
        field = opts.pk if self.lookup_field == "pk" else opts.get_field(self.lookup_field)
        try:
            key = canonical_pk(field, lookup)
        except NotCanonical:
            raise NotFound() from None
        found = super().get_object()
        if not same_key(field.value_from_object(found), key):
            raise NotFound()
        return found

    def create_once(self, request: Request, scope: str, produce: Any) -> Response:
        """Answer a POST that creates something, honouring an ``Idempotency-Key`` header.

        ``produce()`` returns the ``Response``; with a key it runs at most once per user, scope
        and key, and a repeat gets the stored response with ``Idempotent-Replayed: true``.
        """
        key = request.headers.get(idempotency.HEADER)
        if key is None:
            response: Response = produce()
            return response

        def stored() -> tuple[int, Any]:
            first = produce()
            return first.status_code, first.data

        outcome = idempotency.run_once(
            user=request.user, scope=scope, key=key, body=request.data, produce=stored
        )
        response = Response(outcome.body, status=outcome.status)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


@extend_schema_view(
    list=operation(
        "liveclass_sessions_list",
        "List group sessions",
        "Every group session, soonest first, filtered by the query parameters. Any "
        "authenticated user may list them; the meeting details are shown only to those who "
        "manage a session (its teacher, staff).",
        s.SessionSerializer(many=True),
        400,
        404,
    ),
    retrieve=operation(
        "liveclass_sessions_retrieve",
        "Get a group session",
        "One group session with its free seats and add-to-calendar links.",
        s.SessionSerializer,
        404,
    ),
    create=operation(
        "liveclass_sessions_create",
        "Create a group session",
        "A teacher creates a session of a course they teach (staff may name another "
        "teacher). It starts in the future and has at least one seat.",
        s.SessionSerializer,
        400,
        request=s.SessionCreateSerializer,
        code=201,
    ),
    partial_update=operation(
        "liveclass_sessions_partial_update",
        "Change a group session",
        "Its teacher or staff change the title, time, capacity or meeting details. The "
        "capacity cannot drop below the seats taken; booked students are told of a new time.",
        s.SessionSerializer,
        400,
        404,
        409,
        request=s.SessionUpdateSerializer,
    ),
    cancel=operation(
        "liveclass_sessions_cancel",
        "Cancel a group session",
        "Its teacher or staff cancel the session: every active booking of it is cancelled "
        "and every waitlist entry closed, with the reason given.",
        s.SessionSerializer,
        400,
        404,
        409,
        request=s.ReasonSerializer,
    ),
    recurring=operation(
        "liveclass_sessions_create_recurring",
        "Create a run of recurring sessions",
        "Creates one session per occurrence of the rule, in local wall time across "
        "daylight-saving changes; local times the zone skips are reported, not created.",
        s.SessionRunCreatedSerializer,
        400,
        request=s.SessionRunSerializer,
        code=201,
    ),
)
@extend_schema(tags=["sessions"])
class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Group sessions: any authenticated user lists them; the teacher or staff manages them."""

    filterset_class = SessionFilter
    http_method_names = ["get", "post", "patch", "head", "options"]
    throttle_scopes = {"create": "sessions", "recurring": "sessions"}

    def get_queryset(self) -> QuerySet[Any]:
        # The teacher and course rows come with each session: their names are in the answer.
        return (
            get_session_model()
            .objects.select_related("teacher", "course")
            .order_by("start_at_utc", "pk")
        )

    response_serializer_class = s.SessionSerializer

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.SessionCreateSerializer
        if self.action == "partial_update":
            return s.SessionUpdateSerializer
        return super().get_serializer_class()

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        teacher = data.pop("teacher", None) or request.user
        session = services.create_session(teacher=teacher, actor=request.user, **data)
        return self.respond(session, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        session = self.get_object()
        serializer = self.get_serializer(session, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        session = services.update_session(session, actor=request.user, **serializer.validated_data)
        return self.respond(session)

    @action(detail=True, methods=["post"], serializer_class=s.ReasonSerializer)
    def cancel(self, request: Request, pk: Any = None) -> Response:
        session = self.get_object()
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = services.cancel_session(session, actor=request.user, **body.validated_data)
        return self.respond(session)

    @calendar_schema(
        "liveclass_sessions_ics",
        "Download a session's calendar file",
        "The session as an iCalendar file (METHOD:PUBLISH). Its teacher (and staff) get the "
        "session's entry listing the booked students by name; a booked student gets their own "
        "booking's entry. Anyone else gets a 404.",
        404,
    )
    @action(
        detail=True, methods=["get"], serializer_class=None, content_negotiation_class=AnyAccept
    )
    def ics(self, request: Request, pk: Any = None) -> HttpResponse:
        session = self.get_object()
        with in_language_of(request.user):
            body = session_document(session, request.user, timezone.now())
        if body is None:
            raise NotFound()
        return calendar_response(body, f"session-{session.pk}.ics")

    @action(detail=False, methods=["post"], serializer_class=s.SessionRunSerializer)
    def recurring(self, request: Request) -> Response:
        """Create a run of recurring sessions from a rule (local wall time, DST-safe)."""
        body = s.SessionRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        rule = body.rule()
        for name in Recurrence.RULE_FIELDS:
            data.pop(name)
        teacher = data.pop("teacher", None) or request.user
        sessions, skipped = services.create_recurring_sessions(
            teacher=teacher, actor=request.user, rule=rule, **data
        )
        context = self.get_serializer_context()
        return Response(
            {
                "sessions": s.SessionSerializer(sessions, many=True, context=context).data,
                "skipped_times": [time.as_dict() for time in skipped],
            },
            status=status.HTTP_201_CREATED,
        )


def _booking_action(
    operation_id: str, summary: str, description: str, request: Any, created: bool = False
) -> Any:
    return operation(
        operation_id,
        summary,
        description,
        s.BookingSerializer,
        400,
        404,
        409,
        request=request,
        code=201 if created else 200,
    )


@extend_schema_view(
    list=operation(
        "liveclass_bookings_list",
        "List bookings",
        "The bookings the user may see (students their own, teachers those they teach, staff "
        "all), soonest first, filtered by the query parameters.",
        s.BookingSerializer(many=True),
        400,
        404,
    ),
    retrieve=operation(
        "liveclass_bookings_retrieve",
        "Get a booking",
        "One booking the user may see, with its meeting link while it is active.",
        s.BookingSerializer,
        404,
    ),
    create=operation(
        "liveclass_bookings_create",
        "Book a seat or request a lesson",
        "`group_session`: book seats of a session (confirmed, or pending when the teacher "
        "approves group bookings). `one_on_one`: request a lesson with a teacher at a time "
        "inside their availability (pending or confirmed by the teacher's policy).",
        s.BookingSerializer,
        400,
        409,
        request=s.BookingCreateSerializer,
        code=201,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
    ),
    approve=_booking_action(
        "liveclass_bookings_approve",
        "Approve a pending booking",
        "The teacher (or staff) confirms a pending booking, with an optional note; a "
        "one-on-one lesson may get its meeting link, ID and passcode here too.",
        s.ApproveSerializer,
    ),
    decline=_booking_action(
        "liveclass_bookings_decline",
        "Decline a pending booking",
        "The teacher (or staff) declines a pending booking; its seats are freed.",
        s.ReasonSerializer,
    ),
    cancel=_booking_action(
        "liveclass_bookings_cancel",
        "Cancel a booking",
        "The student (until the teacher's cancel window), the teacher or staff cancel a "
        "booking; its seats go to the waitlist.",
        s.ReasonSerializer,
    ),
    reschedule=_booking_action(
        "liveclass_bookings_reschedule",
        "Move a booking",
        "Moves a lesson to a new time, or a seat to another session of the same course: the "
        "answer is the new booking, the old one is marked rescheduled.",
        s.RescheduleSerializer,
        created=True,
    ),
    mark_attended=_booking_action(
        "liveclass_bookings_mark_attended",
        "Mark a booking attended",
        "The teacher (or staff) records that the student attended, once the class started.",
        None,
    ),
    mark_no_show=_booking_action(
        "liveclass_bookings_mark_no_show",
        "Mark a booking as a no-show",
        "The teacher (or staff) records that the student did not come, once the class started.",
        None,
    ),
    meeting=_booking_action(
        "liveclass_bookings_meeting",
        "Give a lesson's meeting details",
        "The teacher (or staff) gives or changes a one-on-one lesson's meeting link, ID or "
        "passcode (only the fields sent change); the student is told and the calendar entry "
        "updated. A group booking's meeting details are its session's.",
        s.LessonMeetingSerializer,
    ),
)
@extend_schema(tags=["bookings"])
class BookingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Bookings visible to the user: students their own, teachers what they teach, staff all."""

    filterset_class = BookingFilter
    throttle_scopes = {"create": "book", "reschedule": "book"}
    pagination_class = OneQueryPagination

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return get_booking_model().objects.none()
        return (
            bookings_visible_to(self.request.user)
            .select_related("session", "course", "teacher", "student_user")
            .order_by("start_at_utc", "pk")
        )

    response_serializer_class = s.BookingSerializer

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.BookingCreateSerializer
        return super().get_serializer_class()

    def create(self, request: Request) -> Response:
        return self.create_once(request, "bookings", lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        body = s.BookingCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["booking_type"] == "group_session":
            booking = services.book_group_session(
                student=request.user,
                session=data["session"],
                seats=data["seats_reserved"],
                note=data["student_note"],
                actor=request.user,
            )
            # The answer shows the session's title and meeting details, read for this
            # request a moment ago: share that row instead of reading it again (with an
            # Idempotency-Key, while the session row is still locked).
            booking.session = data["session"]
        else:
            booking = services.request_one_on_one(
                student=request.user,
                teacher=data["teacher"],
                course=data["course"],
                start_at_utc=data["start_at_utc"],
                end_at_utc=data["end_at_utc"],
                note=data["student_note"],
                actor=request.user,
            )
        return self.respond(booking, status.HTTP_201_CREATED)

    def _body(self, serializer_class: Any, request: Request) -> dict[str, Any]:
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)

    @action(detail=True, methods=["post"], serializer_class=s.ApproveSerializer)
    def approve(self, request: Request, pk: Any = None) -> Response:
        booking = self.get_object()
        data = self._body(s.ApproveSerializer, request)
        return self.respond(services.approve_booking(booking, actor=request.user, **data))

    @action(detail=True, methods=["post"], serializer_class=s.ReasonSerializer)
    def decline(self, request: Request, pk: Any = None) -> Response:
        booking = self.get_object()
        data = self._body(s.ReasonSerializer, request)
        return self.respond(services.decline_booking(booking, actor=request.user, **data))

    @action(detail=True, methods=["post"], serializer_class=s.ReasonSerializer)
    def cancel(self, request: Request, pk: Any = None) -> Response:
        booking = self.get_object()
        data = self._body(s.ReasonSerializer, request)
        return self.respond(services.cancel_booking(booking, actor=request.user, **data))

    @action(detail=True, methods=["post"], serializer_class=s.RescheduleSerializer)
    def reschedule(self, request: Request, pk: Any = None) -> Response:
        booking = self.get_object()
        data = self._body(s.RescheduleSerializer, request)
        new = services.reschedule_booking(booking, actor=request.user, **data)
        return self.respond(new, status.HTTP_201_CREATED)

    @calendar_schema(
        "liveclass_bookings_ics",
        "Download a booking's calendar file",
        "The booking as an iCalendar file (METHOD:PUBLISH), as the caller sees it: the same "
        "UID as in the feeds and e-mails, the meeting passcode only for the booking's own "
        "student and teacher.",
        404,
    )
    @action(
        detail=True, methods=["get"], serializer_class=None, content_negotiation_class=AnyAccept
    )
    def ics(self, request: Request, pk: Any = None) -> HttpResponse:
        booking = self.get_object()
        with in_language_of(request.user):
            body = booking_document(booking, request.user)
        return calendar_response(body, f"booking-{booking.pk}.ics")

    @action(detail=True, methods=["post"], serializer_class=s.LessonMeetingSerializer)
    def meeting(self, request: Request, pk: Any = None) -> Response:
        """Give or change a one-on-one lesson's meeting details (its teacher or staff)."""
        booking = self.get_object()
        data = self._body(s.LessonMeetingSerializer, request)
        return self.respond(services.set_lesson_meeting(booking, actor=request.user, **data))

    @action(detail=True, methods=["post"], url_path="mark-attended", serializer_class=None)
    def mark_attended(self, request: Request, pk: Any = None) -> Response:
        return self.respond(services.mark_attended(self.get_object(), actor=request.user))

    @action(detail=True, methods=["post"], url_path="mark-no-show", serializer_class=None)
    def mark_no_show(self, request: Request, pk: Any = None) -> Response:
        return self.respond(services.mark_no_show(self.get_object(), actor=request.user))


@extend_schema_view(
    list=operation(
        "liveclass_waitlist_list",
        "List waitlist entries",
        "Students see their own entries with their place in line, teachers the queues of "
        "their sessions, staff all.",
        s.WaitlistEntrySerializer(many=True),
        400,
        404,
    ),
    retrieve=operation(
        "liveclass_waitlist_retrieve",
        "Get a waitlist entry",
        "One waitlist entry with its place in line while it waits.",
        s.WaitlistEntrySerializer,
        404,
    ),
    create=operation(
        "liveclass_waitlist_join",
        "Join a session's waitlist",
        "The student joins the line of a full session. When a seat frees up, the next in "
        "line gets a timed offer.",
        s.WaitlistEntrySerializer,
        400,
        409,
        request=s.WaitlistJoinSerializer,
        code=201,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
    ),
    accept=operation(
        "liveclass_waitlist_accept",
        "Accept a seat offer",
        "The student books the seat an open offer holds; the answer is the new booking.",
        s.BookingSerializer,
        400,
        404,
        409,
        request=s.WaitlistAcceptSerializer,
        code=201,
    ),
    leave=operation(
        "liveclass_waitlist_leave",
        "Leave a waitlist",
        "The student leaves the line (or turns down an offer, which goes to the next in line).",
        s.WaitlistEntrySerializer,
        404,
        409,
    ),
)
@extend_schema(tags=["waitlist"])
class WaitlistViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Waitlist entries: students their own (with their place in line), teachers the queues
    of their sessions, staff all. POST joins; ``accept`` books an offered seat."""

    filterset_class = WaitlistFilter
    response_serializer_class = s.WaitlistEntrySerializer
    throttle_scopes = {"create": "waitlist", "accept": "waitlist"}

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return SessionWaitlist.objects.none()
        return (
            with_queue_positions(waitlist_visible_to(self.request.user))
            .select_related("student_user")
            .order_by("session", *WAITLIST_QUEUE_ORDER)
        )

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.WaitlistJoinSerializer
        return super().get_serializer_class()

    def respond_entry(self, entry: Any, code: int = status.HTTP_200_OK) -> Response:
        """Answer with the entry as the list shows it (its place in line included)."""
        return self.respond(self.get_queryset().get(pk=entry.pk), code)

    def create(self, request: Request) -> Response:
        return self.create_once(request, "waitlist", lambda: self._join(request))

    def _join(self, request: Request) -> Response:
        body = s.WaitlistJoinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = services.join_waitlist(
            student=request.user, session=body.validated_data["session"], actor=request.user
        )
        return self.respond_entry(entry, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], serializer_class=s.WaitlistAcceptSerializer)
    def accept(self, request: Request, pk: Any = None) -> Response:
        entry = self.get_object()
        body = s.WaitlistAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        booking = services.accept_offer(
            entry, actor=request.user, note=body.validated_data["student_note"]
        )
        data = s.BookingSerializer(booking, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], serializer_class=None)
    def leave(self, request: Request, pk: Any = None) -> Response:
        entry = services.leave_waitlist(self.get_object(), actor=request.user)
        return self.respond_entry(entry)


def _series_action(
    operation_id: str, summary: str, description: str, request: Any, response: Any
) -> Any:
    return operation(operation_id, summary, description, response, 400, 404, 409, request=request)


@extend_schema_view(
    list=operation(
        "liveclass_series_list",
        "List recurring series",
        "The series the user may see (students their own, teachers those they teach, staff "
        "all), newest first, without their occurrences.",
        s.SeriesSerializer(many=True),
        400,
        404,
    ),
    retrieve=operation(
        "liveclass_series_retrieve",
        "Get a recurring series",
        "One series with every occurrence and where it stands.",
        s.SeriesDetailSerializer,
        404,
    ),
    create=operation(
        "liveclass_series_create",
        "Book a recurring series",
        "Books every occurrence of the rule (one-on-one lessons or seats of matching group "
        "sessions). All or nothing unless `accept_partial`: a 409 `series_conflict` carries "
        "the report of what could not be booked.",
        s.SeriesCreatedSerializer,
        400,
        409,
        request=s.SeriesCreateSerializer,
        code=201,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
    ),
    pause=_series_action(
        "liveclass_series_pause",
        "Pause a series",
        "Cancels the future occurrences and keeps the series, to be resumed later.",
        s.ReasonSerializer,
        s.SeriesDetailSerializer,
    ),
    resume=_series_action(
        "liveclass_series_resume",
        "Resume a paused series",
        "Books the paused series' future occurrences again and reports each one.",
        None,
        s.SeriesCreatedSerializer,
    ),
    cancel=_series_action(
        "liveclass_series_cancel",
        "Cancel a series",
        "Cancels every future occurrence and ends the series.",
        s.ReasonSerializer,
        s.SeriesDetailSerializer,
    ),
    extend=_series_action(
        "liveclass_series_extend",
        "Extend a series",
        "Adds occurrences up to a new count or end date and reports each new one.",
        s.SeriesExtendSerializer,
        s.SeriesCreatedSerializer,
    ),
)
@extend_schema(tags=["series"])
class SeriesViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Recurring series: students their own, teachers the ones they teach, staff all. The
    detail lists every occurrence and where it stands."""

    filterset_class = SeriesFilter
    response_serializer_class = s.SeriesDetailSerializer
    throttle_scopes = {"create": "series", "extend": "series", "resume": "series"}

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return BookingSeries.objects.none()
        series = (
            series_visible_to(self.request.user)
            .select_related("student_user", "teacher", "course")
            .order_by("-created_at", "pk")
        )
        if self.action != "list":
            items = BookingSeriesItem.objects.select_related("booking").order_by("occurrence_index")
            series = series.prefetch_related(Prefetch("items", queryset=items))
        return series

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.SeriesCreateSerializer
        if self.action == "list":
            return s.SeriesSerializer
        return super().get_serializer_class()

    def respond_series(self, series: Any, report: Any = None, code: int = 200) -> Response:
        """Answer with the series as the detail shows it, and the report of what was done."""
        fresh = self.get_queryset().get(pk=series.pk)
        data = dict(s.SeriesDetailSerializer(fresh, context=self.get_serializer_context()).data)
        if report is not None:
            data["report"] = s.SeriesReportSerializer(report.as_dict()).data
        return Response(data, status=code)

    def create(self, request: Request) -> Response:
        return self.create_once(request, "series", lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        body = s.SeriesCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = services.create_series(
            student=request.user,
            teacher=data["teacher"],
            course=data["course"],
            series_type=data["type"],
            rule=body.rule(),
            accept_partial=data["accept_partial"],
            note=data["student_note"],
            actor=request.user,
            **{name: data[name] for name in services.series.MEETING_FIELDS},
        )
        return self.respond_series(report.series, report, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], serializer_class=s.ReasonSerializer)
    def pause(self, request: Request, pk: Any = None) -> Response:
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        series = services.pause_series(self.get_object(), actor=request.user, **body.validated_data)
        return self.respond_series(series)

    @action(detail=True, methods=["post"], serializer_class=None)
    def resume(self, request: Request, pk: Any = None) -> Response:
        report = services.resume_series(self.get_object(), actor=request.user)
        return self.respond_series(report.series, report)

    @action(detail=True, methods=["post"], serializer_class=s.ReasonSerializer)
    def cancel(self, request: Request, pk: Any = None) -> Response:
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        series = services.cancel_series(
            self.get_object(), actor=request.user, **body.validated_data
        )
        return self.respond_series(series)

    @action(detail=True, methods=["post"], serializer_class=s.SeriesExtendSerializer)
    def extend(self, request: Request, pk: Any = None) -> Response:
        body = s.SeriesExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = services.extend_series(
            self.get_object(),
            occurrence_count=data.get("occurrence_count"),
            until_date=data.get("until_date"),
            accept_partial=data["accept_partial"],
            actor=request.user,
        )
        return self.respond_series(report.series, report)


class TeacherOwnedViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    LiveClassViewSet,
):
    """CRUD over a teacher's own rows (policies, availability); staff see and manage all."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def perform_create(self, serializer: Any) -> None:
        fields = {"teacher": self.request.user, **serializer.validated_data}
        row = serializer.Meta.model(**fields)
        serializer.instance = services.save_teacher_row(row, actor=self.request.user)

    def perform_update(self, serializer: Any) -> None:
        row = serializer.instance
        original = copy.copy(row)
        for name, value in serializer.validated_data.items():
            setattr(row, name, value)
        services.save_teacher_row(row, actor=self.request.user, original=original)

    def perform_destroy(self, instance: Any) -> None:
        services.delete_teacher_row(instance, actor=self.request.user)


def _teacher_rows(name: str, serializer: Any, one: str, many: str, what: str) -> Any:
    """The operations of a teacher's own rows: ``one`` and ``many`` name a row, ``what``
    says what the rows set."""
    mine = f"Teachers see and manage their own {many}, staff all. {what}"
    return extend_schema_view(
        list=operation(f"liveclass_{name}_list", f"List {many}", mine, serializer(many=True), 404),
        retrieve=operation(f"liveclass_{name}_retrieve", f"Get {one}", mine, serializer, 404),
        create=operation(
            f"liveclass_{name}_create",
            f"Create {one}",
            mine,
            serializer,
            400,
            request=serializer,
            code=201,
        ),
        update=operation(
            f"liveclass_{name}_update",
            f"Replace {one}",
            mine,
            serializer,
            400,
            404,
            request=serializer,
        ),
        partial_update=operation(
            f"liveclass_{name}_partial_update",
            f"Change {one}",
            mine,
            serializer,
            400,
            404,
            request=serializer,
        ),
        destroy=operation(f"liveclass_{name}_destroy", f"Delete {one}", mine, None, 404, code=204),
    )


@extend_schema(tags=["policies"])
@_teacher_rows(
    "policies",
    s.PolicySerializer,
    "a booking policy",
    "booking policies",
    "A policy sets approvals, notice, the cancel window, buffers and the daily limit, for "
    "all of a teacher's courses or one.",
)
class PolicyViewSet(TeacherOwnedViewSet):
    serializer_class = s.PolicySerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return TeacherBookingPolicy.objects.none()
        return policies_visible_to(self.request.user).order_by("pk")


@extend_schema(tags=["availability"])
@_teacher_rows(
    "availability",
    s.AvailabilitySerializer,
    "an availability window",
    "availability windows",
    "A window is a weekly span of local time in which students may request lessons.",
)
class AvailabilityViewSet(TeacherOwnedViewSet):
    serializer_class = s.AvailabilitySerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return TeacherAvailability.objects.none()
        return availability_visible_to(self.request.user).order_by("pk")


@extend_schema_view(
    list=operation(
        "liveclass_slots_list",
        "List free lesson times",
        "The start times at which a lesson of `duration` minutes with the teacher can be "
        "requested between `start` and `end` (every `step` minutes).",
        s.SlotSerializer(many=True),
        400,
        404,
        parameters=[s.SlotQuerySerializer],
    )
)
@extend_schema(tags=["slots"])
class SlotViewSet(LiveClassViewSet):
    """Free one-on-one start times: ``?teacher=&course=&start=&end=&duration=&step=``."""

    serializer_class = s.SlotSerializer
    filter_backends: list[Any] = []

    def list(self, request: Request) -> Response:
        query = s.SlotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        duration = timedelta(minutes=data["duration"])
        step = timedelta(minutes=data["step"]) if data.get("step") else None
        starts = services.free_slots(
            data["teacher"], data.get("course"), data["start"], data["end"], duration, step
        )
        slots = [{"start_at_utc": at, "end_at_utc": at + duration} for at in starts]
        page = self.paginate_queryset(slots)
        return self.get_paginated_response(s.SlotSerializer(page, many=True).data)


@csrf_exempt  # it changes nothing, and a POST to it must get the same 404
def not_found(request: Any, path: str = "") -> JsonResponse:
    """Answer any other path under the API's prefix (such as an id with a dot) with this
    API's 404 body rather than the host's HTML page."""
    return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)


@extend_schema(exclude=True)
class APIRootView(routers.APIRootView):
    """The index at the mount point: a link to every collection of this API."""

    def get_exception_handler(self) -> Any:
        return exception_handler
