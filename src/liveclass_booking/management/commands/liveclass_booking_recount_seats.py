"""Find and repair drift between sessions' seats_taken and their bookings and offers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.seats import RecountReport, SeatDrift, recount_seats


class Command(BaseCommand):
    help = (
        "Compare each session's seats_taken with the seats its pending and confirmed bookings "
        "and open waitlist offers hold, and set it right (under the session's row lock). "
        "Exits with status 1 when a session holds more seats than its capacity."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report the drift; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = recount_seats(dry_run=options["dry_run"])
        self._write(report)
        if report.unrepairable:
            raise CommandError(
                f"{len(report.unrepairable)} session(s) hold more seats than their capacity; "
                "cancel bookings or raise the capacity, then run this again.",
                returncode=1,
            )

    def _write(self, report: RecountReport) -> None:
        for drift in report.drifts:
            self.stdout.write(self._line(drift, report.dry_run))
        repaired = sum(drift.repaired for drift in report.drifts)
        summary = (
            f"{report.checked} session(s) checked, {len(report.drifts)} with drift, "
            f"{repaired} repaired."
        )
        if report.dry_run:
            summary += " Dry run: nothing was changed."
        self.stdout.write(summary)

    @staticmethod
    def _line(drift: SeatDrift, dry_run: bool) -> str:
        head = (
            f"Session {drift.session_pk} {drift.title!r} "
            f"({drift.start_at_utc:%Y-%m-%d %H:%M} UTC): seats_taken {drift.recorded} → "
            f"{drift.held}"
        )
        if not drift.repairable:
            return (
                f"{head}: not repaired, its bookings and offers hold more than its "
                f"{drift.capacity} seats."
            )
        if dry_run:
            return f"{head} (not changed: dry run)."
        offered = f"; {drift.offered} seat(s) offered to the waitlist" if drift.offered else ""
        return f"{head}: repaired{offered}."
