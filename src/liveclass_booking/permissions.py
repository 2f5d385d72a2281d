"""Object permissions: the library's role rule, widened or narrowed by the host's backends.

Acting as the teacher of an object (editing or cancelling a session, approving or declining a
booking, marking attendance, managing a policy or availability row) needs the ``change``
permission of the object's model on that object. :func:`object_permission` asks the
authentication backends exactly as ``User.has_perm(perm, obj)`` does, with the library's role
rule answering last: a backend that grants the permission widens the rule (a teaching
assistant allowed on one booking), a backend that raises ``PermissionDenied`` narrows it (a
suspended teacher).
"""

from __future__ import annotations

from typing import Any

from django.contrib import auth
from django.core.exceptions import PermissionDenied
from django.db.models import Model


def change_permission(obj: Model) -> str:
    """``"app_label.change_modelname"`` for ``obj``'s model (the active, possibly swapped one)."""
    opts = obj._meta
    return f"{opts.app_label}.change_{opts.model_name}"


def object_permission(user: Any, perm: str, obj: Model, *, default: bool) -> bool:
    """Whether ``user`` holds ``perm`` on ``obj``; ``default`` is the library's own answer.

    Active superusers always do. Otherwise each authentication backend is asked in order, as
    Django does: the first to grant decides yes, the first to raise ``PermissionDenied``
    decides no, and if none decides, ``default`` stands.
    """
    if not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    for backend in auth.get_backends():
        has_perm = getattr(backend, "has_perm", None)
        if has_perm is None:
            continue
        try:
            if has_perm(user, perm, obj):
                return True
        except PermissionDenied:
            return False
    return default
