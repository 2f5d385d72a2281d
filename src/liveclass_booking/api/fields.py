"""Serializer fields of the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from .schema import extend_schema_field


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset in; UTC with ``Z`` out. A naive value is ``naive_datetime``."""

    default_error_messages = {
        "naive_datetime": "Give an offset, e.g. 2027-01-04T17:00:00+01:00 or ...Z.",
        "invalid": "Datetime has wrong format. Use ISO 8601 with an offset.",
        "out_of_range": "Datetime is out of range in UTC.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            parsed: datetime | None = value
        elif isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
        else:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        assert parsed is not None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive_datetime")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
            self.fail("out_of_range")

    def to_representation(self, value: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    }
)
class LocalTimeField(serializers.TimeField):
    """A wall-clock time without an offset, ``HH:MM[:SS[.ffffff]]``; the row's time zone says
    where. Documented by a pattern: the OpenAPI format ``time`` is RFC 3339's full-time, which
    requires an offset, and these times have none."""
