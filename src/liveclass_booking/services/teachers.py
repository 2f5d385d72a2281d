"""A teacher's own rows: booking policies and availability windows.

The API and the admin save and delete them through these two functions, so who may manage a
row is decided in one place: the resolver's ``can_manage`` on the row (by default its teacher
and staff) and ``can_teach`` for the teacher and course the row names.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..exceptions import InvalidInput, NotAllowed
from ..policies import get_policy_resolver
from .common import require_manager, retry_on_deadlock


def check_teacher_row(row: Any, *, actor: Any = None, original: Any = None) -> None:
    """Raise ``not_allowed`` unless ``actor`` may save ``row`` (a policy or availability row).

    ``original`` is the row as stored before the change, when updating: the actor must be
    allowed to manage both the stored row and the changed one, so nobody moves a row onto or
    away from another teacher. The row's teacher must pass ``can_teach`` for its course.
    """
    if original is not None:
        require_manager(actor, original, "manage this teacher's entries")
    require_manager(actor, row, "manage this teacher's entries")
    if row.teacher_id is not None and not get_policy_resolver().can_teach(row.teacher, row.course):
        raise NotAllowed(f"{row.teacher} may not teach this course.")


@retry_on_deadlock
def save_teacher_row(row: Any, *, actor: Any = None, original: Any = None) -> Any:
    """Check (:func:`check_teacher_row`), validate and save a policy or availability row.

    Model validation errors become ``invalid`` with per-field ``errors``.
    """
    check_teacher_row(row, actor=actor, original=original)
    try:
        row.full_clean()
        with transaction.atomic():
            row.save()
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        errors["non_field_errors"] = errors.pop("__all__", [])
        errors = {field: messages for field, messages in errors.items() if messages}
        raise InvalidInput(_first(errors), errors=errors) from exc
    except IntegrityError as exc:  # a concurrent duplicate slipped past full_clean
        raise InvalidInput(
            "This conflicts with an existing entry.",
            errors={"non_field_errors": ["This conflicts with an existing entry."]},
        ) from exc
    return row


@retry_on_deadlock
def delete_teacher_row(row: Any, *, actor: Any = None) -> None:
    """Delete a policy or availability row on behalf of ``actor``."""
    require_manager(actor, row, "manage this teacher's entries")
    row.delete()


def _first(errors: dict[str, list[str]]) -> str:
    for field, messages in errors.items():
        return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid."
