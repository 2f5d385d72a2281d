"""Task backends for the tests."""

import threading
from typing import Any

try:
    from django.tasks.backends.dummy import DummyBackend
except ImportError:
    from django_tasks.backends.dummy import DummyBackend


class RefusingOnceBackend(DummyBackend):
    """A queue that keeps what it is given (as the dummy backend does) but refuses the next
    ``refusals`` enqueues, as a broker that is briefly down does."""

    refusals = 0

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionRefusedError("the queue is down")
        return super().enqueue(task, args, kwargs)


class GatedBackend(DummyBackend):
    """A queue whose enqueues of deferred tasks wait until ``gate`` is set (and say, through
    ``waiting``, that one waits): a broker that answers slowly."""

    gate = threading.Event()
    waiting = threading.Event()

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        if task.run_after is not None:
            self.waiting.set()
            assert self.gate.wait(10), "the gate was never opened"
        return super().enqueue(task, args, kwargs)
