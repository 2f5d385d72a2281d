"""Serializer fields of the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
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


LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


@extend_schema_field({"type": "string", "pattern": LOCAL_TIME_PATTERN})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time without an offset, ``HH:MM[:SS[.ffffff]]``; the row's time zone says
    where. Documented by a pattern: the OpenAPI format ``time`` is RFC 3339's full-time, which
    requires an offset, and these times have none."""

    default_error_messages = {
        "invalid": "Give a wall-clock time without an offset, HH:MM[:SS], e.g. 17:00; the "
        "time zone is its own field.",
    }

    def to_internal_value(self, value: Any) -> Any:
        # Django's parser drops an offset silently; a wall time with one is a mistake.
        if isinstance(value, str) and not re.match(LOCAL_TIME_PATTERN, value.strip()):
            self.fail("invalid")
        return super().to_internal_value(value)


@extend_schema_field({"type": "string", "maxLength": 500, "description": "A URL, or empty."})
class OptionalURLField(serializers.CharField):
    """A URL or the empty string (the OpenAPI ``uri`` format does not allow empty)."""

    default_error_messages = {"invalid_url": "Enter a valid URL, or leave it empty."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                URLValidator()(value)
            except DjangoValidationError:
                self.fail("invalid_url")
        return value
