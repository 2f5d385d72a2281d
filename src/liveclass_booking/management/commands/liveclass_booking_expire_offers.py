"""Expire waitlist offers past their time and pass their seats on (run it from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...services.waitlist import expire_due_offers


class Command(BaseCommand):
    help = (
        "Expire waitlist offers whose time is up and offer their seats to the next students "
        "waiting; close the waitlists of sessions that have started. Idempotent: safe to run "
        "at any time, e.g. every minute."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = expire_due_offers()
        self.stdout.write(
            f"{report.expired} offer(s) expired, {report.offered} seat(s) offered, "
            f"{report.closed} waitlist entry(ies) closed, in {len(report.sessions)} session(s)."
        )
