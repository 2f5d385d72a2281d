"""Delete ``Idempotency-Key`` records older than ``LIVECLASS_BOOKING_IDEMPOTENCY_KEY_TTL``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...services.idempotency import purge_expired_keys


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records. Safe to run at any time, e.g. daily."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_expired_keys()
        self.stdout.write(f"Deleted {deleted} expired idempotency key(s).")
