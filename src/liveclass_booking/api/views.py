"""Viewsets: validate the request's shape, call one service, shape the answer."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, status, viewsets
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
from .schema import errors, extend_schema, extend_schema_view, header_parameter
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


class LiveClassViewSet(viewsets.GenericViewSet[Any]):
    """What every view of this API shares: JSON bodies, authentication, pagination, the SPEC
    error contract (only for these views), and 404 for malformed ids."""

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
    list=extend_schema(
        operation_id="liveclass_sessions_list",
        responses={200: s.SessionSerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        operation_id="liveclass_sessions_retrieve",
        responses={200: s.SessionSerializer, **errors(404)},
    ),
    create=extend_schema(
        operation_id="liveclass_sessions_create",
        request=s.SessionCreateSerializer,
        responses={201: s.SessionSerializer, **errors(400, 413, 429)},
    ),
    partial_update=extend_schema(
        operation_id="liveclass_sessions_partial_update",
        request=s.SessionUpdateSerializer,
        responses={200: s.SessionSerializer, **errors(400, 404, 409, 413)},
    ),
    cancel=extend_schema(
        operation_id="liveclass_sessions_cancel",
        request=s.ReasonSerializer,
        responses={200: s.SessionSerializer, **errors(400, 404, 409, 413)},
    ),
    recurring=extend_schema(
        operation_id="liveclass_sessions_create_recurring",
        request=s.SessionRunSerializer,
        responses={201: s.SessionRunCreatedSerializer, **errors(400, 403, 413, 429)},
    ),
)
@extend_schema(tags=["sessions"])
class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Group sessions: any authenticated user lists them; the teacher or staff manages them."""

    filterset_class = SessionFilter
    http_method_names = ["get", "post", "patch", "head", "options"]
    throttle_scopes = {"create": "sessions", "recurring": "sessions"}

    def get_queryset(self) -> QuerySet[Any]:
        return get_session_model().objects.all().order_by("start_at_utc", "pk")

    response_serializer_class = s.SessionSerializer

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.SessionCreateSerializer
        if self.action == "partial_update":
            return s.SessionUpdateSerializer
        return self.response_serializer_class

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


def _booking_action(operation_id: str, request: Any, created: bool = False) -> Any:
    code = 201 if created else 200
    statuses: tuple[int, ...] = (400, 404, 409)
    if request is not None:
        statuses += (413,)  # a body over the size limit
    if created:
        statuses += (429,)  # the write throttle
    return extend_schema(
        operation_id=operation_id,
        request=request,
        responses={code: s.BookingSerializer, **errors(*statuses)},
    )


@extend_schema_view(
    list=extend_schema(
        operation_id="liveclass_bookings_list",
        responses={200: s.BookingSerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        operation_id="liveclass_bookings_retrieve",
        responses={200: s.BookingSerializer, **errors(404)},
    ),
    create=extend_schema(
        operation_id="liveclass_bookings_create",
        request=s.BookingCreateSerializer,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
        responses={201: s.BookingSerializer, **errors(400, 409, 413, 429)},
    ),
    approve=_booking_action("liveclass_bookings_approve", s.ApproveSerializer),
    decline=_booking_action("liveclass_bookings_decline", s.ReasonSerializer),
    cancel=_booking_action("liveclass_bookings_cancel", s.ReasonSerializer),
    reschedule=_booking_action(
        "liveclass_bookings_reschedule", s.RescheduleSerializer, created=True
    ),
    mark_attended=_booking_action("liveclass_bookings_mark_attended", None),
    mark_no_show=_booking_action("liveclass_bookings_mark_no_show", None),
)
@extend_schema(tags=["bookings"])
class BookingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """Bookings visible to the user: students their own, teachers what they teach, staff all."""

    filterset_class = BookingFilter
    throttle_scopes = {"create": "book", "reschedule": "book"}

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return get_booking_model().objects.none()
        return (
            bookings_visible_to(self.request.user)
            .select_related("session", "course")
            .order_by("start_at_utc", "pk")
        )

    response_serializer_class = s.BookingSerializer

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.BookingCreateSerializer
        return self.response_serializer_class

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

    @action(detail=True, methods=["post"], url_path="mark-attended", serializer_class=None)
    def mark_attended(self, request: Request, pk: Any = None) -> Response:
        return self.respond(services.mark_attended(self.get_object(), actor=request.user))

    @action(detail=True, methods=["post"], url_path="mark-no-show", serializer_class=None)
    def mark_no_show(self, request: Request, pk: Any = None) -> Response:
        return self.respond(services.mark_no_show(self.get_object(), actor=request.user))


@extend_schema_view(
    list=extend_schema(
        operation_id="liveclass_waitlist_list",
        responses={200: s.WaitlistEntrySerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        operation_id="liveclass_waitlist_retrieve",
        responses={200: s.WaitlistEntrySerializer, **errors(404)},
    ),
    create=extend_schema(
        operation_id="liveclass_waitlist_join",
        request=s.WaitlistJoinSerializer,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
        responses={201: s.WaitlistEntrySerializer, **errors(400, 403, 409, 413, 429)},
    ),
    accept=extend_schema(
        operation_id="liveclass_waitlist_accept",
        request=s.WaitlistAcceptSerializer,
        responses={201: s.BookingSerializer, **errors(400, 403, 404, 409, 413, 429)},
    ),
    leave=extend_schema(
        operation_id="liveclass_waitlist_leave",
        request=None,
        responses={200: s.WaitlistEntrySerializer, **errors(403, 404, 409)},
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
        return with_queue_positions(waitlist_visible_to(self.request.user)).order_by(
            "session", "created_at", "pk"
        )

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.WaitlistJoinSerializer
        return self.response_serializer_class

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


def _series_action(operation_id: str, request: Any, response: Any, throttled: bool = False) -> Any:
    statuses: tuple[int, ...] = (400, 403, 404, 409)
    if request is not None:
        statuses += (413,)  # a body over the size limit
    if throttled:
        statuses += (429,)  # the write throttle
    return extend_schema(
        operation_id=operation_id,
        request=request,
        responses={200: response, **errors(*statuses)},
    )


@extend_schema_view(
    list=extend_schema(
        operation_id="liveclass_series_list",
        responses={200: s.SeriesSerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        operation_id="liveclass_series_retrieve",
        responses={200: s.SeriesDetailSerializer, **errors(404)},
    ),
    create=extend_schema(
        operation_id="liveclass_series_create",
        request=s.SeriesCreateSerializer,
        parameters=IDEMPOTENCY_KEY_PARAMETER,
        responses={201: s.SeriesCreatedSerializer, **errors(400, 403, 409, 413, 429)},
    ),
    pause=_series_action("liveclass_series_pause", s.ReasonSerializer, s.SeriesDetailSerializer),
    resume=_series_action(
        "liveclass_series_resume", None, s.SeriesCreatedSerializer, throttled=True
    ),
    cancel=_series_action("liveclass_series_cancel", s.ReasonSerializer, s.SeriesDetailSerializer),
    extend=_series_action(
        "liveclass_series_extend",
        s.SeriesExtendSerializer,
        s.SeriesCreatedSerializer,
        throttled=True,
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
        series = series_visible_to(self.request.user).order_by("-created_at", "pk")
        if self.action != "list":
            items = BookingSeriesItem.objects.select_related("booking").order_by("occurrence_index")
            series = series.prefetch_related(Prefetch("items", queryset=items))
        return series

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.SeriesCreateSerializer
        if self.action == "list":
            return s.SeriesSerializer
        return self.response_serializer_class

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


def _teacher_rows(name: str, serializer: Any) -> Any:
    return extend_schema_view(
        list=extend_schema(
            operation_id=f"liveclass_{name}_list",
            responses={200: serializer(many=True), **errors(404)},
        ),
        retrieve=extend_schema(
            operation_id=f"liveclass_{name}_retrieve", responses={200: serializer, **errors(404)}
        ),
        create=extend_schema(
            operation_id=f"liveclass_{name}_create", responses={201: serializer, **errors(400, 413)}
        ),
        update=extend_schema(
            operation_id=f"liveclass_{name}_update",
            responses={200: serializer, **errors(400, 404, 413)},
        ),
        partial_update=extend_schema(
            operation_id=f"liveclass_{name}_partial_update",
            responses={200: serializer, **errors(400, 404, 413)},
        ),
        destroy=extend_schema(
            operation_id=f"liveclass_{name}_destroy", responses={204: None, **errors(404)}
        ),
    )


@extend_schema(tags=["policies"])
@_teacher_rows("policies", s.PolicySerializer)
class PolicyViewSet(TeacherOwnedViewSet):
    serializer_class = s.PolicySerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return TeacherBookingPolicy.objects.none()
        return policies_visible_to(self.request.user).order_by("pk")


@extend_schema(tags=["availability"])
@_teacher_rows("availability", s.AvailabilitySerializer)
class AvailabilityViewSet(TeacherOwnedViewSet):
    serializer_class = s.AvailabilitySerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return TeacherAvailability.objects.none()
        return availability_visible_to(self.request.user).order_by("pk")


@extend_schema_view(
    list=extend_schema(
        operation_id="liveclass_slots_list",
        parameters=[s.SlotQuerySerializer],
        responses={200: s.SlotSerializer(many=True), **errors(400, 404)},
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
