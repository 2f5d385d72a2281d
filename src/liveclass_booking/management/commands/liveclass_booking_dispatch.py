"""Deliver the notification outbox: one pass, or ``--loop`` for a long-running worker."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from ...notifications import dispatch


class Command(BaseCommand):
    help = (
        "Send due notifications and reminders: one pass, or with --loop until stopped "
        "(SIGTERM or SIGINT ends it after the current delivery). Safe to run in several "
        "processes at once; run it from cron or systemd when no tasks worker does it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="Keep running.")
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="With --loop: seconds to wait after a pass that found nothing (default 5).",
        )
        parser.add_argument(
            "--batch", type=int, default=100, help="Deliveries claimed at a time (default 100)."
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=None,
            help="Seconds a claim lasts (default: LIVECLASS_BOOKING_NOTIFICATION_LEASE).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["lease"] is not None and options["lease"] <= 0:
            raise CommandError("--lease must be a positive number of seconds.")
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        lease = timedelta(seconds=options["lease"]) if options["lease"] is not None else None
        batch = options["batch"]
        stop = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        if options["loop"]:
            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
        while True:
            if options["loop"]:
                # A long-running worker: drop a connection the server closed or that is older
                # than CONN_MAX_AGE, as Django does between requests.
                close_old_connections()
            report = dispatch(batch=batch, lease=lease, stop=lambda: stop)
            if options["verbosity"] > 0 and (not options["loop"] or report.sent or report.failed):
                self.stdout.write(str(report))
            if not options["loop"] or stop:
                return
            if not (report.sent or report.retried or report.expanded):
                waited = 0.0
                while waited < options["interval"] and not stop:
                    time.sleep(0.1)
                    waited += 0.1
            if stop:
                return
