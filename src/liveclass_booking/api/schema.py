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

__all__ = [
    "ErrorSerializer",
    "errors",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
    "header_parameter",
    "named_choice_field",
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
    """The body of every 4xx answer (SPEC §5)."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # Built here because a field called "errors" would shadow Serializer.errors.
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
                help_text="Per-field messages, for code invalid or naive_datetime.",
            ),
        }


DESCRIPTIONS = {
    400: "Invalid input: `invalid`, `naive_datetime`, or a rule such as `min_notice`, "
    "`outside_availability`, `cancel_window_closed`.",
    401: "Not authenticated: `not_authenticated`.",
    403: "Not allowed: `not_allowed` (or `not_authenticated` for some authentication schemes).",
    404: "Not found, not visible to this user, or a page past the last: `not_found`.",
    409: "Conflict: `session_full`, `session_not_bookable`, `slot_unavailable`, "
    "`daily_limit_reached`, `already_booked`, `invalid_transition`, `offer_expired`, "
    "`idempotency_conflict`, `limit_reached` (with `limit` and `max`).",
    413: "The body is larger than the host's `DATA_UPLOAD_MAX_MEMORY_SIZE`: `too_large`.",
    429: "Too many requests: `throttled`; the `Retry-After` header says how many seconds to wait.",
}


def errors(*statuses: int) -> dict[int, Any]:
    """Error responses for ``statuses`` (401 and 403 are always included)."""
    if OpenApiResponse is None:
        return {}
    wanted = sorted({401, 403, *statuses})
    return {s: OpenApiResponse(ErrorSerializer, description=DESCRIPTIONS[s]) for s in wanted}


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
