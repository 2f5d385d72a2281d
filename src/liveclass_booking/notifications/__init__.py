"""Notifications: the dispatcher that delivers the outbox, the notifiers, reminders.

See docs/notifications.md. The services only write outbox rows
(:mod:`liveclass_booking.services.outbox`); nothing here is imported by them.
"""

from .content import Message
from .dispatcher import DispatchReport, dispatch, retry_deliveries
from .notifier import BaseNotifier, EmailNotifier, SkipDelivery, get_notifier

__all__ = [
    "BaseNotifier",
    "DispatchReport",
    "EmailNotifier",
    "Message",
    "SkipDelivery",
    "dispatch",
    "get_notifier",
    "retry_deliveries",
]
