"""Notifiers: what turns one message into something a person receives.

``LIVECLASS_BOOKING_NOTIFIER`` names the class (default :class:`EmailNotifier`; ``None``
turns notifications off). A host writes its own for SMS, push or in-app messages by
subclassing :class:`BaseNotifier` and implementing :meth:`BaseNotifier.send`, or subclasses
:class:`EmailNotifier` to change the sender, the templates or the attachment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from ..calendar import booking_entry, calendar_domain, itip_calendar
from ..conf import booking_settings
from .content import Message


class SkipDelivery(Exception):
    """Raised by a notifier for a message that cannot or need not be sent (for example a
    recipient without an e-mail address): the delivery is marked ``skipped``, not retried."""


class BaseNotifier:
    """Sends one message. ``channels`` names the channels it serves: the dispatcher makes one
    delivery per (event, recipient, channel)."""

    channels: tuple[str, ...] = ("email",)

    def send(self, message: Message) -> None:
        """Deliver ``message`` or raise: :class:`SkipDelivery` to give up on it, any other
        exception to have it retried later (with backoff, up to
        ``LIVECLASS_BOOKING_NOTIFICATION_MAX_ATTEMPTS`` attempts)."""
        raise NotImplementedError


class EmailNotifier(BaseNotifier):
    """E-mail through Django's mail API (whatever ``EMAIL_BACKEND`` is: SMTP, django-anymail,
    the console, a file).

    Each kind has three templates under ``liveclass_booking/email/``: ``<kind>.subject.txt``,
    ``<kind>.txt`` and ``<kind>.html``; override them the Django way (a template of the same
    name earlier in the template search path). They are rendered in the recipient's language
    (the resolver's ``get_user_language``) and time zone (``get_user_timezone``).
    """

    channels = ("email",)
    template_dir = "liveclass_booking/email"

    def from_email(self, message: Message) -> str | None:
        """The sender; default ``DEFAULT_FROM_EMAIL``."""
        return None

    def render(self, message: Message) -> tuple[str, str, str]:
        """The subject, text body and HTML body of ``message``."""
        context = message.context()
        base = f"{self.template_dir}/{message.kind}"
        with translation.override(message.language), timezone.override(message.zone):
            subject = render_to_string(f"{base}.subject.txt", context)
            text = render_to_string(f"{base}.txt", context)
            html = render_to_string(f"{base}.html", context)
        return " ".join(subject.split()), text, html

    def calendars(self, message: Message) -> list[tuple[str, bytes, str]]:
        """The ``.ics`` attachments as (file name, content, iTIP method): the recipient's
        booking as a ``REQUEST`` (new or changed) or a ``CANCEL``; a rescheduled booking keeps
        the UID of the one it replaced, so its ``REQUEST`` moves the entry. None for messages
        without an entry (see ``Message.calendar_status``)."""
        status = message.calendar_status
        booking = message.own_booking
        if not status or booking is None:
            return []
        data = message.data
        entry = booking_entry(
            booking,
            message.recipient,
            series=message.series.pk if message.series is not None else "",
            status=status,
            sequence=message.sequence,
            start=data.get("start"),
            end=data.get("end"),
            stamp=message.event.created_at,
            itip=True,
        )
        ics, method = itip_calendar(entry)
        return [("cancel.ics" if method == "CANCEL" else "invite.ics", ics, method)]

    def build(self, message: Message) -> EmailMultiAlternatives:
        """The e-mail of ``message``, ready to send."""
        address = getattr(message.recipient, "email", "")
        if not address:
            raise SkipDelivery("The recipient has no e-mail address.")
        subject, text, html = self.render(message)
        email = EmailMultiAlternatives(
            subject,
            text,
            self.from_email(message),
            [address],
            headers={"Message-ID": message.message_id},
        )
        email.attach_alternative(html, "text/html")
        with translation.override(message.language):
            calendars = self.calendars(message)
        for name, ics, method in calendars:
            email.attach(name, ics.decode(), f"text/calendar; method={method}")
        return email

    def send(self, message: Message) -> None:
        self.build(message).send(fail_silently=False)


def message_id(delivery_pk: Any, event_pk: Any) -> str:
    """The ``Message-ID`` of one delivery: the same on every attempt, unique per delivery."""
    return f"<liveclass-booking.{event_pk}.{delivery_pk}@{calendar_domain()}>"


@lru_cache(maxsize=8)
def _notifier_for(path: str) -> BaseNotifier:
    notifier: BaseNotifier = import_string(path)()
    return notifier


def get_notifier() -> BaseNotifier | None:
    """The configured notifier, or None when notifications are off."""
    path = booking_settings.NOTIFIER
    return _notifier_for(path) if path else None


__all__ = ["BaseNotifier", "EmailNotifier", "SkipDelivery", "get_notifier", "message_id"]
