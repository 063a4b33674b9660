"""Encryption at rest for tokens and webhook secrets (Fernet: AES-128-CBC + HMAC)."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    pass


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> Fernet:
    try:
        return Fernet(key_material.encode())
    except ValueError:
        # Any other string (including SECRET_KEY) is stretched into a valid Fernet key.
        digest = hashlib.sha256(("pilotsite-field-encryption:" + key_material).encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


def fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return fernet().decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "a stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY (or SECRET_KEY) changed "
            "since it was saved; restore the old key or enter the secret again"
        ) from exc


class EncryptedTextField(models.TextField):
    """A text column whose value is only ever stored encrypted."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
