"""Answers in ``text/calendar``: the ``.ics`` files of the booking and session ``ics/``
actions and the feed. Errors stay this API's JSON bodies whatever the client accepts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from django.utils import translation
from rest_framework.negotiation import BaseContentNegotiation

from ..policies import get_policy_resolver
from .schema import OpenApiResponse, errors, extend_schema

try:
    from drf_spectacular.types import OpenApiTypes
except ImportError:  # pragma: no cover - exercised only without the extra
    OpenApiTypes = None  # type: ignore[assignment,misc]

CALENDAR_TYPE = "text/calendar; charset=utf-8"


class AnyAccept(BaseContentNegotiation):
    """Answer with the first renderer whatever ``Accept`` says: a calendar client asks for
    ``text/calendar``, gets the calendar, and an error still gets this API's JSON body."""

    def select_parser(self, request: Any, parsers: Iterable[Any]) -> Any:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Any, renderers: Iterable[Any], format_suffix: Any = None
    ) -> Any:
        first = next(iter(renderers))
        return first, first.media_type


def calendar_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=CALENDAR_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-cache"
    return response


def in_language_of(user: Any) -> Any:
    """Calendar text is written in the owner's language, whatever the request asks."""
    return translation.override(get_policy_resolver().get_user_language(user))


def calendar_schema(
    operation_id: str,
    summary: str,
    description: str,
    *statuses: int,
    revalidates: bool = False,
    public: bool = False,
    **kwargs: Any,
) -> Any:
    """The schema of an operation answering ``text/calendar`` (whatever ``Accept`` says, so
    never 406), and, when it ``revalidates``, 304 to an ``If-None-Match`` naming its current
    ETag. A ``public`` one needs no login (no 401 or 403)."""
    if OpenApiTypes is None:  # pragma: no cover
        return extend_schema()
    responses: dict[Any, Any] = {(200, "text/calendar"): OpenApiTypes.STR}
    if revalidates:
        responses[304] = OpenApiResponse(
            description="Not modified: the If-None-Match header names the current ETag."
        )
    if public:
        kwargs["auth"] = []
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        responses={**responses, **errors(*statuses, auth=not public, json=False)},
        **kwargs,
    )
