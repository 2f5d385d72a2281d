"""Import legacy group sessions, group bookings and one-on-one lessons (docs/legacy.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from ...legacy import LegacyAdapter
from ...services.legacy import ImportReport, import_legacy

KINDS = (("session", "session(s)"), ("group_booking", "group booking(s)"), ("lesson", "lesson(s)"))


def _counts(counter: Any) -> str:
    return ", ".join(f"{counter[kind]} {label}" for kind, label in KINDS)


class Command(BaseCommand):
    help = (
        "Import legacy sessions, group bookings and one-on-one lessons through a host adapter "
        "(a subclass of liveclass_booking.legacy.LegacyAdapter). Rows imported before are "
        "left alone, so it is safe to run again. Exits with status 1 when rows were skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--adapter",
            required=True,
            help="Dotted path of the adapter class, e.g. lms.legacy.Phase1Adapter.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be imported and skipped; write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        adapter = self._adapter(options["adapter"])
        report = import_legacy(adapter, dry_run=options["dry_run"])
        self._write(report)
        if report.skipped:
            raise CommandError(f"{len(report.skipped)} row(s) skipped.", returncode=1)

    def _adapter(self, path: str) -> LegacyAdapter:
        try:
            adapter_class = import_string(path)
        except ImportError as exc:
            raise CommandError(f"Cannot import the adapter {path!r}: {exc}") from exc
        if not (isinstance(adapter_class, type) and issubclass(adapter_class, LegacyAdapter)):
            raise CommandError(
                f"{path!r} is not a subclass of liveclass_booking.legacy.LegacyAdapter."
            )
        adapter: LegacyAdapter = adapter_class()
        return adapter

    def _write(self, report: ImportReport) -> None:
        verb = "Would import" if report.dry_run else "Imported"
        note = " (dry run: nothing was written)" if report.dry_run else ""
        self.stdout.write(f"Legacy import from {report.source!r}{note}.")
        self.stdout.write(f"{verb}: {_counts(report.imported)}.")
        self.stdout.write(f"Already imported: {_counts(report.already_imported)}.")
        self.stdout.write(f"Skipped: {len(report.skipped)} row(s).")
        for row in report.skipped:
            self.stdout.write(f"  {row.kind} {row.key}: {row.code}: {row.reason}")
        for key, taken in report.seats_taken.items():
            self.stdout.write(f"Session {key}: seats_taken {taken} after its bookings.")
