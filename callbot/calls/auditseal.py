"""Signed checkpoints of the audit chain (Ed25519, ``cryptography``).

A checkpoint says "entry #n has hash h, n entries were written up to it, at time
t", signed with the audit signing key. Whoever holds the public key alone can
check a checkpoint, in the database or in an exported file.

The key: ``AUDIT_SIGNING_KEY`` (or ``AUDIT_SIGNING_KEY_FILE``): a PEM private key,
or 32 bytes as 64 hex digits. Unset on the embedded default, one is generated
under ``var/`` on first use (``AUDIT_SIGNING_KEY_PATH``); elsewhere signing
without a key is a configuration error.

Each checkpoint names its key (``key_id``), so a rotated key's checkpoints still
verify: ``AUDIT_PREVIOUS_PUBLIC_KEYS`` (or ``_FILE``) holds the public keys of the
keys used before, as PEM blocks one after the other (docs/audit.md, "Rotating
the key").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from callbot.calls import auditchain
from callbot.calls.auditmodels import (
    AuditCheckpoint,
    AuditEntry,
    chain_head,
    lock_chain,
)

SIGNED_FIELDS = ("sequence", "head_hash", "entry_count", "created_at", "reason")


class AuditKeyError(ImproperlyConfigured):
    """The signing or public key is missing or unreadable."""


def _parse_private(raw: str) -> Ed25519PrivateKey:
    text = raw.strip()
    if "BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError("AUDIT_SIGNING_KEY is not an Ed25519 private key")
        return key
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise AuditKeyError(
            "AUDIT_SIGNING_KEY must be a PEM Ed25519 private key or 64 hex digits"
        ) from None
    if len(seed) != 32:
        raise AuditKeyError("AUDIT_SIGNING_KEY in hex must be 32 bytes (64 digits)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _generated_key(path: Path) -> Ed25519PrivateKey:
    """The embedded default's key: read it, or make it once (mode 0600)."""
    if path.exists():
        return _parse_private(path.read_text())
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it first: use theirs.
        return _parse_private(path.read_text())
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def signing_key() -> Ed25519PrivateKey:
    """The audit signing key; raises ``AuditKeyError`` when none is configured."""
    raw = settings.AUDIT_SIGNING_KEY
    if raw:
        return _parse_private(raw)
    if settings.AUDIT_SIGNING_KEY_GENERATE:
        return _generated_key(Path(settings.AUDIT_SIGNING_KEY_PATH))
    raise AuditKeyError(
        "set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE to sign audit checkpoints "
        "(`manage.py audit_key --generate` prints a new one)"
    )


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def new_private_pem() -> str:
    """A fresh signing key, PEM, for ``audit_key --generate``."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def load_public(text: str) -> Ed25519PublicKey:
    """A public key from PEM (as ``audit_key --public`` prints it)."""
    try:
        key = serialization.load_pem_public_key(text.strip().encode())
    except ValueError as exc:
        raise AuditKeyError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError("the public key is not an Ed25519 key")
    return key


_PEM_PUBLIC = re.compile(
    r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL
)


def load_publics(text: str) -> list[Ed25519PublicKey]:
    """Every public key of ``text``: PEM blocks one after the other (a file of
    the current and previous keys). Raises ``AuditKeyError`` if there is none."""
    blocks = _PEM_PUBLIC.findall(text)
    if not blocks:
        raise AuditKeyError("no PEM public key (-----BEGIN PUBLIC KEY-----) found")
    return [load_public(block) for block in blocks]


def previous_public_keys() -> list[Ed25519PublicKey]:
    """The public keys of the signing keys used before this one
    (``AUDIT_PREVIOUS_PUBLIC_KEYS``); none when unset."""
    text = settings.AUDIT_PREVIOUS_PUBLIC_KEYS
    if not text.strip():
        return []
    try:
        return load_publics(text)
    except AuditKeyError as exc:
        raise AuditKeyError(f"AUDIT_PREVIOUS_PUBLIC_KEYS: {exc}") from None


def trusted_keys() -> list[Ed25519PublicKey]:
    """The keys this installation's checkpoints may be signed with: the signing
    key's public half, then the previous ones."""
    return [signing_key().public_key(), *previous_public_keys()]


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    """What the signature covers: the checkpoint's fields and its key id."""
    content = {name: checkpoint[name] for name in SIGNED_FIELDS}
    content["created_at"] = auditchain.canonical_time(checkpoint["created_at"])
    content["key_id"] = checkpoint["key_id"]
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def signature_problem(
    checkpoint: Mapping[str, Any],
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey],
) -> str | None:
    """Why the checkpoint's signature does not hold under the key it names, one
    of ``public``; None if it does."""
    name = f"checkpoint {checkpoint.get('id')} (#{checkpoint.get('sequence')})"
    keys = [public] if isinstance(public, Ed25519PublicKey) else list(public)
    by_id = {key_id(k): k for k in keys}
    signer = by_id.get(str(checkpoint.get("key_id")))
    if signer is None:
        known = "this one" if len(by_id) == 1 else "any of " + ", ".join(by_id)
        return f"{name} was signed by key {checkpoint.get('key_id')}, not {known}"
    public = signer
    try:
        signature = base64.b64decode(str(checkpoint["signature"]), validate=True)
        public.verify(signature, signed_bytes(checkpoint))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"{name} has a signature that does not match its content"
    return None


def seal(reason: str, *, sequence: int | None = None) -> AuditCheckpoint | None:
    """Sign a checkpoint of entry #``sequence`` (default: the chain's head).

    Takes the chain's lock, so the head cannot move while it is read. Returns
    None when there is nothing to seal (an empty chain, or a periodic
    checkpoint with no entry since the last one). Raises ``AuditKeyError``.
    """
    key = signing_key()
    with transaction.atomic():
        lock_chain("default")
        head_seq, head_hash = chain_head("default")
        if sequence is not None and sequence != head_seq:
            from_entry = (
                AuditEntry.objects.filter(sequence=sequence)
                .values_list("entry_hash", flat=True)
                .first()
            )
            if from_entry is None:
                raise ValueError(f"no audit entry #{sequence} to seal")
            head_seq, head_hash = sequence, str(from_entry)
        if head_seq == 0:
            return None
        last = AuditCheckpoint.objects.order_by("-sequence", "-id").first()
        if (
            reason == AuditCheckpoint.Reason.PERIODIC
            and last is not None
            and last.sequence >= head_seq
        ):
            return None
        checkpoint = AuditCheckpoint(
            sequence=head_seq,
            head_hash=head_hash,
            entry_count=head_seq,
            created_at=timezone.now(),
            reason=reason,
            key_id=key_id(key.public_key()),
        )
        fields = {
            name: getattr(checkpoint, name) for name in (*SIGNED_FIELDS, "key_id")
        }
        checkpoint.signature = base64.b64encode(key.sign(signed_bytes(fields))).decode()
        checkpoint.save()
    return checkpoint
