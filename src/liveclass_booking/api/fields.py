"""Serializer fields of the API."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from .. import timebounds
from .schema import extend_schema_field


class NotCanonical(ValueError):
    """A value that is not a primary key exactly as the key renders."""


def canonical_pk(pk_field: models.Field[Any, Any], value: Any) -> Any:
    """Return the primary-key value ``value`` names if it is given exactly as the key renders
    (``str(pk_field.to_python(value)) == value`` for text; a JSON number only for an integer
    key, never a bool or a float) and can exist in the column; else raise :class:`NotCanonical`.

    So ``02``, ``+2``, ``2.0``, ``1_0``, `` 2`` and a full-width ``２`` name nothing, as does
    a number beyond the column's range or an upper-case or brace-wrapped UUID.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise NotCanonical(value)
    if isinstance(value, str) and "\x00" in value:  # no key holds NUL; PostgreSQL refuses it
        raise NotCanonical(value)
    try:
        python = pk_field.to_python(value)
        pk_field.run_validators(python)  # an integer column's range, a text column's length
    except (DjangoValidationError, ValueError, TypeError, OverflowError):
        raise NotCanonical(value) from None
    if isinstance(value, str):
        canonical = str(python) == value
    else:
        canonical = type(python) is int and python == value
    if not canonical:
        raise NotCanonical(value)
    return python


def same_key(found: Any, asked: Any) -> bool:
    """Whether the key of a row the database found is the key asked for, character for
    character: MySQL and MariaDB compare text under the column's collation, usually
    case-insensitive and blind to trailing spaces, so ``COURSE-V1:...`` or ``key `` would find
    the row of ``course-v1:...`` or ``key``."""
    return bool(found == asked)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField[Any]):
    """A related object named by its primary key, given exactly as the key renders (see
    :func:`canonical_pk`). Anything else is ``invalid`` like the id of a missing object."""

    def to_internal_value(self, data: Any) -> Any:
        queryset = self.get_queryset()
        assert queryset is not None
        try:
            pk = canonical_pk(queryset.model._meta.pk, data)
        except NotCanonical:
            if isinstance(data, bool) or not isinstance(data, int | str):
                self.fail("incorrect_type", data_type=type(data).__name__)
            self.fail("does_not_exist", pk_value=data)
        try:
            found = queryset.get(pk=pk)
        except ObjectDoesNotExist:
            self.fail("does_not_exist", pk_value=data)
        if not same_key(found.pk, pk):
            self.fail("does_not_exist", pk_value=data)
        return found


#: A time followed by a space and an offset's digits: the ``+`` of ``+01:00`` that a query
#: string decoded as a space.
_PLUS_AS_SPACE = re.compile(r"T?\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}(:?\d{2})?$")

PLUS_AS_SPACE_MESSAGE = (
    "The offset's '+' arrived as a space: in a query string '+' means a space. Write it as "
    "%2B (e.g. 2027-01-04T17:00:00%2B01:00) or give the time in UTC with Z."
)


def plus_became_space(value: str) -> bool:
    """Whether ``value`` looks like a datetime whose ``+`` offset was decoded as a space."""
    return bool(_PLUS_AS_SPACE.search(value.strip()))


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset in; UTC with ``Z`` out. A naive value is ``naive_datetime``."""

    default_error_messages = {
        "naive_datetime": "Give an offset, e.g. 2027-01-04T17:00:00+01:00 or ...Z.",
        "invalid": "Datetime has wrong format. Use ISO 8601 with an offset.",
        "plus_as_space": PLUS_AS_SPACE_MESSAGE,
        "out_of_range": timebounds.INSTANT_MESSAGE,
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
            self.fail("plus_as_space" if plus_became_space(str(value)) else "invalid")
        assert parsed is not None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive_datetime")
        try:
            return timebounds.to_utc(parsed)
        except timebounds.OutOfRange:
            self.fail("out_of_range")

    def to_representation(self, value: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class BoundedDateField(serializers.DateField):
    """An ISO 8601 date inside the supported range (see :mod:`liveclass_booking.timebounds`)."""

    default_error_messages = {"out_of_range": timebounds.DATE_MESSAGE}

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        try:
            return timebounds.check_date(day)
        except timebounds.OutOfRange:
            self.fail("out_of_range")


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
