"""Add-to-calendar links: the web calendars' own "new event" pages, filled in.

They carry the title, the times (UTC) and the meeting link when the reader may see it, never a
passcode: the link's contents pass through the calendar provider's servers."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = "https://outlook.live.com/calendar/0/action/compose"


def _compact(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_to_calendar(summary: str, start: datetime, end: datetime, link: str = "") -> dict[str, str]:
    """``{"google": ..., "outlook": ...}`` for an event from ``start`` to ``end``."""
    google = {"action": "TEMPLATE", "text": summary, "dates": f"{_compact(start)}/{_compact(end)}"}
    outlook = {
        "rru": "addevent",
        "subject": summary,
        "startdt": _iso(start),
        "enddt": _iso(end),
    }
    if link:
        google |= {"location": link, "details": link}
        outlook |= {"location": link, "body": link}
    return {"google": f"{GOOGLE}?{urlencode(google)}", "outlook": f"{OUTLOOK}?{urlencode(outlook)}"}
