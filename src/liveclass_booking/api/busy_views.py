"""Busy calendars: a teacher's own calendars whose busy times block their one-on-one time
(``busy-sources/``, ``busy-sources/{id}/sync/``) and the busy periods imported from them
(``busy-periods/``, times only). Addresses and passwords are write-only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..calendar.sources import (
    create_busy_source,
    delete_busy_source,
    update_busy_source,
    visible_busy_periods,
    visible_busy_sources,
)
from ..calendar.sync import sync_now
from ..models import BusyPeriod, BusySource
from . import serializers as s
from .filters import BusyPeriodFilter, BusySourceFilter
from .schema import extend_schema, extend_schema_view, operation
from .views import LiveClassViewSet

OWN = "Teachers see and manage their own busy calendars, staff all; anybody else's is a 404."


@extend_schema_view(
    list=operation(
        "liveclass_busy_sources_list",
        "List busy calendars",
        f"{OWN} Addresses and passwords are never answered: `url_hint` shows a feed's scheme "
        "and host only.",
        s.BusySourceSerializer(many=True),
        400,
        404,
    ),
    create=operation(
        "liveclass_busy_sources_create",
        "Add a busy calendar",
        f"{OWN} The calendar is synced soon after (or at once with `sync/`); its busy times "
        "then block one-on-one requests. `teacher` defaults to the requesting user, who must "
        "be a teacher; at most the configured number of calendars per teacher "
        "(`limit_reached`).",
        s.BusySourceSerializer,
        400,
        409,
        request=s.BusySourceCreateSerializer,
        code=201,
    ),
    retrieve=operation(
        "liveclass_busy_sources_retrieve",
        "Get a busy calendar",
        f"{OWN} With how its last sync went.",
        s.BusySourceSerializer,
        404,
    ),
    update=operation(
        "liveclass_busy_sources_update",
        "Replace a busy calendar",
        f"{OWN} Left out, `url` and `password` keep their stored values; the other fields "
        "take their defaults. A new address or credentials make it due for a sync at once.",
        s.BusySourceSerializer,
        400,
        404,
        request=s.BusySourceSerializer,
    ),
    partial_update=operation(
        "liveclass_busy_sources_partial_update",
        "Change a busy calendar",
        f"{OWN} Only the fields given change. A new address or credentials make it due for a "
        "sync at once; disabling it removes its busy periods.",
        s.BusySourceSerializer,
        400,
        404,
        request=s.BusySourceSerializer,
    ),
    destroy=operation(
        "liveclass_busy_sources_destroy",
        "Remove a busy calendar",
        f"{OWN} Its busy periods go with it.",
        None,
        404,
        code=204,
    ),
    sync=operation(
        "liveclass_busy_sources_sync",
        "Sync a busy calendar now",
        f"{OWN} Fetches the calendar and replaces its busy periods; the answer is the "
        "calendar with `result`. A failed fetch is still a 200: `status` is `failed` and the "
        "earlier busy periods are kept. At most one sync per calendar every 30 seconds "
        "(`throttled`, with `Retry-After`).",
        s.BusySourceSyncedSerializer,
        400,
        404,
    ),
)
@extend_schema(tags=["calendar"])
class BusySourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LiveClassViewSet):
    """A teacher's own busy calendars; staff see and manage all. Saved through
    :mod:`liveclass_booking.calendar.sources`, synced through
    :func:`~liveclass_booking.calendar.sync.sync_now`."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    filterset_class = BusySourceFilter
    response_serializer_class = s.BusySourceSerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return BusySource.objects.none()
        return visible_busy_sources(self.request.user).order_by("teacher", "created_at", "pk")

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return s.BusySourceCreateSerializer
        return super().get_serializer_class()

    def create(self, request: Request) -> Response:
        body = s.BusySourceCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        teacher = data.pop("teacher", None) or request.user
        source = create_busy_source(actor=request.user, teacher=teacher, **data)
        return self.respond(source, status.HTTP_201_CREATED)

    def update(self, request: Request, pk: Any = None, partial: bool = False) -> Response:
        source = self.get_object()
        body = s.BusySourceSerializer(source, data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        teacher = changes.pop("teacher", None)
        if teacher is not None and teacher.pk != source.teacher_id:
            changes["teacher"] = teacher  # the service refuses it: a calendar keeps its teacher
        return self.respond(update_busy_source(source, actor=request.user, **changes))

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: Any = None) -> Response:
        delete_busy_source(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], serializer_class=None)
    def sync(self, request: Request, pk: Any = None) -> Response:
        source = self.get_object()
        result = sync_now(source, actor=request.user)
        source.result = {
            "outcome": result.outcome,
            "periods": result.periods,
            "error_code": result.error_code,
            "error": result.error,
        }
        data = s.BusySourceSyncedSerializer(source, context=self.get_serializer_context()).data
        return Response(data)


@extend_schema_view(
    list=operation(
        "liveclass_busy_periods_list",
        "List imported busy periods",
        "The busy times imported from the user's own busy calendars (staff: everyone's), "
        "soonest first, times only. `start` and `end` keep the periods overlapping that range.",
        s.BusyPeriodSerializer(many=True),
        400,
        404,
    )
)
@extend_schema(tags=["calendar"])
class BusyPeriodViewSet(mixins.ListModelMixin, LiveClassViewSet):
    """Busy periods imported from a teacher's own calendars: theirs, staff all."""

    filterset_class = BusyPeriodFilter
    response_serializer_class = s.BusyPeriodSerializer

    def get_queryset(self) -> QuerySet[Any]:
        if self.schema_only:
            return BusyPeriod.objects.none()
        return visible_busy_periods(self.request.user).order_by("start_at_utc", "pk")
