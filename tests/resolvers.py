"""A host-style policy resolver used by the tests."""

from typing import Any

from liveclass_booking.policies import DefaultPolicyResolver


class NobodyBooks(DefaultPolicyResolver):
    def can_book(self, student: Any, course: Any, session: Any = None) -> bool:
        return False


class NotAResolver:
    pass
