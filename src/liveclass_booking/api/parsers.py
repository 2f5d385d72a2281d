"""The request-body guard of this API: a JSON body is parsed only if everything downstream
(serializers, the idempotency store, the database, the renderer) can take it.

Refused as ``400 invalid`` (a parse error): JSON nested deeper than :data:`MAX_DEPTH` (however
deep: the decoder's own recursion limit is answered the same way), text with a lone UTF-16
surrogate such as ``"\\ud800"`` (in a key or a value; it cannot be encoded, stored or
rendered), and numbers too large for a float such as ``1e400``. A body larger than Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is ``413 too_large`` (:class:`BodyTooLarge`; Django raises
``RequestDataTooBig`` before a parser runs, and :mod:`.errors` answers it).
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework import exceptions, parsers, status

#: The deepest nesting of objects and arrays a body may have (``{"a": 1}`` is depth 1).
MAX_DEPTH = 32


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this server accepts."
    default_code = "too_large"


def _refuse(reason: str) -> exceptions.ParseError:
    return exceptions.ParseError(f"JSON parse error - {reason}")


def check_body(data: Any) -> None:
    """Raise a parse error unless every part of the parsed ``data`` is safe to use (see the
    module docstring). Iterative, so a deep body cannot exhaust the stack here."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _refuse(f"objects and arrays nest at most {MAX_DEPTH} deep.")
            if isinstance(value, dict):
                pending.extend((key, depth) for key in value)
                value = value.values()
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _refuse("text holds a lone surrogate (\\ud800-\\udfff).") from None
        elif isinstance(value, float) and not math.isfinite(value):
            raise _refuse("a number is too large.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with :func:`check_body` on what it parses."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _refuse(f"objects and arrays nest at most {MAX_DEPTH} deep.") from None
        check_body(data)
        return data
