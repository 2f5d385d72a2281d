"""Expire pending bookings whose approval timeout has passed (run it from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...services.transitions import expire_due_requests, give_deadlines


class Command(BaseCommand):
    help = (
        "Record the expiry of pending bookings not approved or declined within their policy's "
        "approval timeout (audited, signalled, seats offered to the waitlist), and give a "
        "deadline to pending bookings made before the timeout existed. Idempotent: safe to "
        "run at any time, e.g. every few minutes. Nothing depends on it: an overdue request "
        "reads as expired and holds nothing even before it runs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        given = give_deadlines()
        expired = expire_due_requests()
        self.stdout.write(
            f"{expired} request(s) expired; {given} request(s) without a deadline given one."
        )
