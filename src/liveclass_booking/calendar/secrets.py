"""Encryption at rest of busy sources' secrets (feed URLs, CalDAV passwords).

Values are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a
key derived from ``SECRET_KEY``; the keys of ``SECRET_KEY_FALLBACKS`` still decrypt, so a key
rotation done the Django way keeps working. A value no key decrypts (``SECRET_KEY`` replaced
without a fallback) raises :class:`SecretUnreadable`: the source's owner enters it again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

__all__ = ["SecretUnreadable", "decrypt_secret", "encrypt_secret"]

_SALT = "liveclass_booking.calendar.secrets"


class SecretUnreadable(Exception):
    """A stored secret that none of the project's keys decrypts."""


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    salted_hmac(_SALT, "", secret=key, algorithm="sha256").digest()
                )
            )
            for key in keys
        ]
    )


def encrypt_secret(value: str) -> str:
    """Return ``value`` encrypted (``""`` stays ``""``)."""
    if not value:
        return ""
    return _fernet().encrypt(value.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    """Return the value :func:`encrypt_secret` encrypted into ``token``."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError, UnicodeError) as exc:
        raise SecretUnreadable(
            "The stored secret cannot be decrypted with this project's keys."
        ) from exc
