"""Run a function in many threads at once, each with its own database connection."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import connections

from liveclass_booking.exceptions import BookingError


def race(count: int, work: Callable[[int], Any]) -> list[tuple[str, Any]]:
    """Call ``work(i)`` for i in range(count) in ``count`` threads released together.

    Returns one ``("ok", result)``, ``(code, None)`` for a domain error, or
    ``("exception", repr)`` per thread.
    """
    barrier = threading.Barrier(count)
    results: list[tuple[str, Any]] = [("not run", None)] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = ("ok", work(i))
        except BookingError as exc:
            results[i] = (exc.code, None)
        except Exception as exc:
            results[i] = ("exception", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def outcomes(results: list[tuple[str, Any]]) -> Counter[str]:
    return Counter(code for code, _ in results)
