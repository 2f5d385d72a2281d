"""The error contract, scoped to this API's views: every 4xx body has a stable ``code`` and a
human ``detail``; validation errors (``invalid``, ``naive_datetime``) also carry ``errors``
per field, whether a serializer or a service found them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from ..exceptions import BookingError, InvalidInput, NaiveDatetime
from .parsers import BodyTooLarge

#: The code of an API error this module does not know more about.
FALLBACK_CODE = "error"

DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "not_allowed"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "invalid"),
    (BodyTooLarge, "too_large"),
]


def _codes(detail: Any) -> set[str]:
    if isinstance(detail, dict):
        return set().union(*(_codes(v) for v in detail.values())) if detail else set()
    if isinstance(detail, list):
        return set().union(*(_codes(v) for v in detail)) if detail else set()
    return {getattr(detail, "code", "invalid")}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            message = _first_message(value)
            return message if key == "non_field_errors" else f"{key}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _plain(detail: Any) -> Any:
    """JSON-ready copy: containers kept, numbers, booleans and null kept, the rest as text."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(value) for value in detail]
    if detail is None or isinstance(detail, bool | int | float):
        return detail
    return str(detail)


def _domain_body(exc: BookingError) -> dict[str, Any]:
    """The extra keys of a domain error's body. A service names the one input at fault as
    ``field``; the answer puts it the way serializers do, as ``errors`` per field."""
    extra = _plain(exc.data)
    field = extra.pop("field", None)
    if field is not None and "errors" not in extra:
        extra["errors"] = {str(field): [exc.detail]}
    if isinstance(exc, InvalidInput | NaiveDatetime) and "errors" not in extra:
        extra["errors"] = {"non_field_errors": [exc.detail]}
    return extra


def error_response(code: str, detail: str, http_status: int, **extra: Any) -> Response:
    return Response({"code": code, "detail": detail, **extra}, status=http_status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn domain and DRF errors into this API's error body. Unknown errors propagate."""
    if isinstance(exc, BookingError):
        set_rollback()
        response = error_response(exc.code, exc.detail, exc.http_status, **_domain_body(exc))
        if exc.data.get("retry_after") is not None:
            response["Retry-After"] = str(exc.data["retry_after"])
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # raised by Django before any parser runs
        exc = BodyTooLarge()
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.ValidationError):
        codes = _codes(exc.detail)
        code = "naive_datetime" if "naive_datetime" in codes else "invalid"
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response = error_response(
            code, _first_message(detail), status.HTTP_400_BAD_REQUEST, errors=_plain(detail)
        )
    else:
        code = next((c for cls, c in DRF_CODES if isinstance(exc, cls)), FALLBACK_CODE)
        response = error_response(code, _first_message(exc.detail), exc.status_code)
    for name, value in headers.items():
        response[name] = value
    return response
