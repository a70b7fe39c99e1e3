"""Encryption of the secrets smart_keys keeps in the database: the parkings' signing keys
and the barrier gateways' credentials.

A database dump or a read replica then leaks no key that can forge access commands. The
encryption keys come from ``ACCESS_COMMAND_KEY_ENCRYPTION_KEY`` (comma-separated: the
first encrypts, all decrypt, so it can be rotated), or are derived from ``SECRET_KEY``
when it is unset.
"""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HKDF_INFO = b"secured-parking smart_keys secrets at rest v1"


def encrypt_secret(plaintext: bytes) -> str:
    return _fernet().encrypt(plaintext).decode("ascii")


def decrypt_secret(token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored smart_keys secret cannot be decrypted: ACCESS_COMMAND_KEY_ENCRYPTION_KEY "
            "(or SECRET_KEY, when that is unset) changed. Put the old value back as a second "
            "comma-separated entry, or rotate the parking's key pair."
        ) from None


def seal_credential(credential: str, *, url: str) -> str:
    """A gateway credential encrypted together with the URL it may be sent to."""
    return encrypt_secret(json.dumps({"url": url, "credential": credential}).encode())


def unseal_credential(token: str, *, url: str) -> str:
    """The credential sealed with ``url``; empty when it was sealed with another URL."""
    sealed = json.loads(decrypt_secret(token))
    return str(sealed["credential"]) if sealed["url"] == url else ""


def _fernet() -> MultiFernet:
    secrets = settings.ACCESS_COMMAND_KEY_ENCRYPTION_KEY or [settings.SECRET_KEY]
    return MultiFernet([Fernet(_derive(secret)) for secret in secrets])


def _derive(secret: str) -> bytes:
    # HKDF rather than the raw value: any string works as input, and the derived key is
    # used for nothing else that SECRET_KEY is.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(key)
