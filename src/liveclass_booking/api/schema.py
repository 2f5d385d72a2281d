"""OpenAPI 3 annotations for drf-spectacular, an optional extra (``liveclass-booking[openapi]``).

Without drf-spectacular installed the decorators here do nothing and the API works the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from ..exceptions import BookingError
from .errors import DRF_CODES, FALLBACK_CODE

try:
    from drf_spectacular.utils import (
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
        extend_schema_field,
        extend_schema_view,
    )
except ImportError:  # pragma: no cover - exercised only without the extra

    def _unchanged(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda target: target

    extend_schema = extend_schema_view = extend_schema_field = _unchanged  # type: ignore[assignment,unused-ignore]
    OpenApiResponse = OpenApiParameter = None  # type: ignore[assignment,misc]
else:
    import json

    from drf_spectacular.extensions import OpenApiSerializerExtension
    from drf_spectacular.settings import spectacular_settings

    class _ClientFriendlyComponents(OpenApiSerializerExtension):  # type: ignore[no-untyped-call,unused-ignore]
        """With ``COMPONENT_SPLIT_REQUEST`` (request and answer components apart), this API's
        serializers and their subclasses describe what generated clients need:

        * in an answer, every field is required (but those a serializer names in
          ``fields_left_out_for_some``): the serializers render every field, so a client
          types a session's ``description`` as present, not as maybe absent;
        * in a request, a field the server fills in when absent has no ``default`` keyword
          (its description names the value instead): openapi-typescript, by default, makes
          every property with a ``default`` required, in request bodies too.

        Without the split one component serves both directions and is left as
        drf-spectacular makes it."""

        match_subclasses = True

        def map_serializer(self, auto_schema: Any, direction: str) -> Any:
            schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
            properties = schema.get("properties")
            if not spectacular_settings.COMPONENT_SPLIT_REQUEST or not properties:
                return schema
            if direction == "response":
                absent = set(getattr(self.target, "fields_left_out_for_some", ()))
                schema["required"] = sorted(set(properties) - absent)
            else:
                for prop in properties.values():
                    if "default" in prop:
                        value = json.dumps(prop.pop("default"))
                        said = prop.get("description", "")
                        prop["description"] = f"{said} Default: {value}.".lstrip()
            return schema

    class _ModelSerializerComponents(_ClientFriendlyComponents):
        target_class = "liveclass_booking.api.serializers.ModelSerializer"

    class _SerializerComponents(_ClientFriendlyComponents):
        target_class = "liveclass_booking.api.serializers.Serializer"


__all__ = [
    "ErrorSerializer",
    "errors",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
    "header_parameter",
    "named_choice_field",
    "operation",
]


def error_codes() -> list[str]:
    """Every ``code`` an error body of this API can carry."""
    found: set[str] = set()
    pending: list[type[BookingError]] = [BookingError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return sorted(found | {code for _, code in DRF_CODES} | {FALLBACK_CODE})


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every 4xx answer: always ``code`` and ``detail``; the other keys only with
    the codes their descriptions name."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # Built here because a field called "errors" would shadow Serializer.errors.
        def count(help_text: str) -> serializers.IntegerField:
            return serializers.IntegerField(required=False, help_text=help_text)

        return {
            # Not an enum: a host's booking rules add codes of their own (check_booking).
            "code": serializers.CharField(
                help_text="Stable machine-readable code: one of "
                + ", ".join(f"`{code}`" for code in error_codes())
                + ", or a code of the host's own booking rules.",
            ),
            "detail": serializers.CharField(help_text="Human-readable explanation."),
            "errors": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                required=False,
                help_text="Per-field messages (non_field_errors for the input as a whole): "
                "always with invalid and naive_datetime; idempotency_conflict names the "
                "Idempotency-Key header here.",
            ),
            "limit": serializers.CharField(
                required=False, help_text="limit_reached: which per-account limit."
            ),
            "max": count("limit_reached: the limit's number."),
            "status": serializers.CharField(
                required=False,
                help_text="invalid_transition, already_waitlisted, offer_expired: the state "
                "the booking, series or waitlist entry is in.",
            ),
            "entry": serializers.JSONField(
                required=False,
                help_text="already_waitlisted: the id of the existing entry (as ids render).",
            ),
            "seats_available": count("session_full, seats_available: the seats still free."),
            "offer_expires_at": serializers.DateTimeField(
                required=False, help_text="offer_expired: when the offer ended."
            ),
            "busy_from": serializers.DateTimeField(
                required=False,
                help_text="slot_unavailable for an imported busy period: when it starts.",
            ),
            "busy_until": serializers.DateTimeField(
                required=False,
                help_text="slot_unavailable for an imported busy period: when it ends.",
            ),
            "retry_after": count("throttled (a busy calendar's sync): seconds to wait."),
            "cancel_window_hours": count("cancel_window_closed: the teacher's window."),
            "min_notice_hours": count("min_notice: the notice the teacher needs."),
            "max_bookings_per_day": count("daily_limit_reached: the teacher's daily limit."),
            "counts": serializers.DictField(
                child=serializers.IntegerField(),
                required=False,
                help_text="series_conflict: occurrences per outcome.",
            ),
            "occurrences": serializers.ListField(
                child=serializers.DictField(),
                required=False,
                help_text="series_conflict: what each occurrence would have been (as in a "
                "series report).",
            ),
            "skipped_times": serializers.ListField(
                child=serializers.DictField(),
                required=False,
                help_text="series_conflict: local times the zone skips (DST gaps).",
            ),
        }


DESCRIPTIONS = {
    400: "Invalid input: `invalid` or `naive_datetime` (with `errors` per field), or a rule "
    "such as `min_notice`, `outside_availability`, `cancel_window_closed`.",
    401: "Not authenticated (no or bad credentials): `not_authenticated`. The "
    "`WWW-Authenticate` header names the scheme when the host's first authentication class "
    "has one (with session authentication alone this is a 403).",
    403: "Not allowed: `not_allowed`; `not_authenticated` when the host's authentication has "
    "no challenge to send (session authentication).",
    404: "Not found, not visible to this user, or a page past the last: `not_found`.",
    406: "The `Accept` header names no type this operation answers with: `not_acceptable`.",
    409: "Conflict: `session_full`, `session_not_bookable`, `slot_unavailable`, "
    "`daily_limit_reached`, `already_booked`, `already_waitlisted`, `seats_available`, "
    "`invalid_transition`, `offer_expired`, `series_conflict`, `idempotency_conflict`, "
    "`limit_reached` (with `limit` and `max`).",
    413: "The body is larger than the host's `DATA_UPLOAD_MAX_MEMORY_SIZE`: `too_large`.",
    415: "The body is not `application/json`: `unsupported_media_type`.",
    429: "Too many requests (this API's write throttles or the host's own): `throttled`; the "
    "`Retry-After` header says how many seconds to wait.",
}


def errors(*statuses: int, body: bool = False, auth: bool = True, json: bool = True) -> Any:
    """Error responses for ``statuses`` and those every operation can answer: 401 and 403
    (unless it needs no ``auth``), 406 (when it answers ``json``), 429 (the host's throttles
    apply to every view), and 413 and 415 when it reads a ``body``."""
    if OpenApiResponse is None:
        return {}
    wanted = {429, *statuses}
    if auth:
        wanted |= {401, 403}
    if json:
        wanted.add(406)
    if body:
        wanted |= {413, 415}
    return {
        s: OpenApiResponse(ErrorSerializer, description=DESCRIPTIONS[s]) for s in sorted(wanted)
    }


def header_parameter(name: str, description: str, max_length: int) -> list[Any]:
    """An optional string request header, for ``extend_schema(parameters=...)``."""
    if OpenApiParameter is None:
        return []
    return [
        OpenApiParameter(
            name,
            str,
            OpenApiParameter.HEADER,
            required=False,
            description=description,
            pattern=rf"^[!-~]{{1,{max_length}}}$",
        )
    ]


_NAMED_CHOICE_FIELDS: dict[str, type[serializers.ChoiceField]] = {}


def named_choice_field(choices: Any, component: str, **kwargs: Any) -> serializers.ChoiceField:
    """A ChoiceField whose enum is its own schema component ``component``, so that two fields
    called ``status`` with different choices never collide in a host's schema. Fields naming
    the same component share one class (one component in the schema)."""
    values = [str(v) for v in choices.values] if hasattr(choices, "values") else list(choices)
    field_class = _NAMED_CHOICE_FIELDS.get(component)
    if field_class is None:
        field_class = type(f"{component}Field", (serializers.ChoiceField,), {})
        extend_schema_field({"type": "string", "enum": values}, component_name=component)(
            field_class
        )
        _NAMED_CHOICE_FIELDS[component] = field_class
    field: serializers.ChoiceField = field_class(
        choices=getattr(choices, "choices", values), **kwargs
    )
    return field


def operation(
    operation_id: str,
    summary: str,
    description: str,
    response: Any,
    *statuses: int,
    request: Any = None,
    code: int = 200,
    **kwargs: Any,
) -> Any:
    """``extend_schema`` for one action: its own summary and description (never the viewset's
    docstring), its ``request`` body if any, its answer under ``code`` and its errors
    (``statuses`` and those :func:`errors` adds)."""
    responses = {code: response, **errors(*statuses, body=request is not None)}
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        request=request,
        responses=responses,
        **kwargs,
    )
