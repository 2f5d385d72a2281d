"""Sync teachers' busy calendars that are due (run it from cron or a scheduler)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...calendar.sync import sync_due_sources, sync_source
from ...models import BusySource


class Command(BaseCommand):
    help = (
        "Sync every enabled busy calendar whose next sync is due (each at most every "
        "LIVECLASS_BOOKING_BUSY_SYNC_INTERVAL; failing ones back off). Safe to run in several "
        "processes at once. With --source, sync those sources now, due or not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source", action="append", default=[], help="A source's id (repeatable)."
        )
        parser.add_argument(
            "--limit", type=int, default=None, help="Sync at most this many due sources."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        if options["source"]:
            sources = list(
                BusySource.objects.filter(pk__in=options["source"]).select_related("teacher")
            )
            missing = set(map(str, options["source"])) - {str(s.pk) for s in sources}
            if missing:
                raise CommandError(f"No busy source with id {', '.join(sorted(missing))}.")
            results = [sync_source(source) for source in sources if source.enabled]
        else:
            results = sync_due_sources(limit=options["limit"])
        for result in results:
            if options["verbosity"] > 1 or result.outcome == "failed":
                self.stdout.write(str(result))
        if options["verbosity"] > 0:
            failed = sum(result.outcome == "failed" for result in results)
            self.stdout.write(f"{len(results)} busy calendars synced, {failed} failed.")
