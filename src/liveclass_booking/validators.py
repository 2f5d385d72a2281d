"""Field validators shared by the models and the API."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .choices import DAY_CODES


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def is_valid_timezone(value: str) -> bool:
    """Return whether ``value`` is an IANA time-zone name known to this installation."""
    return isinstance(value, str) and value in _iana_names()


def validate_timezone(value: str) -> None:
    """Reject anything that is not an IANA time-zone name such as ``Europe/Berlin``."""
    if not is_valid_timezone(value):
        raise ValidationError(
            _("“%(value)s” is not an IANA time-zone name (for example Europe/Berlin)."),
            code="invalid_timezone",
            params={"value": value},
        )


def validate_days_of_week(value: str) -> None:
    """Accept comma-separated RFC 5545 day codes (``MO,WE,FR``), each at most once."""
    if value == "":
        return
    codes = [part.strip().upper() for part in value.split(",")]
    unknown = [code for code in codes if code not in DAY_CODES]
    if unknown:
        raise ValidationError(
            _("Unknown day code(s) %(codes)s; use MO, TU, WE, TH, FR, SA, SU."),
            code="invalid_days_of_week",
            params={"codes": ", ".join(unknown)},
        )
    if len(set(codes)) != len(codes):
        raise ValidationError(_("Each day may be named only once."), code="invalid_days_of_week")
