"""Rotating the audit signing key: checkpoints signed by a previous key still
verify, in the database and in an export, with the previous public keys kept in
AUDIT_PREVIOUS_PUBLIC_KEYS (the procedure of docs/audit.md, step by step)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command

import pytest

from callbot.calls import audit, auditexport, auditseal
from callbot.calls.auditmodels import AuditCheckpoint

pytestmark = pytest.mark.django_db


def command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write(n: int) -> None:
    for i in range(n):
        audit.record(
            None, "mute_participant", f"target {i}", outcome="requested", detail={}
        )


def verify_fails(*args: str) -> str:
    with pytest.raises(CommandError) as failed:
        command("verify_audit", *args)
    assert failed.value.returncode == 1
    return str(failed.value)


@pytest.fixture
def rotated(settings: Any, tmp_path: Path) -> dict[str, Path]:
    """Three entries sealed by an old key, then the rotation, then two more
    sealed by the new key; the old, new and both public key files."""
    settings.AUDIT_SIGNING_KEY_GENERATE = False
    settings.AUDIT_SIGNING_KEY = command("audit_key", "--generate")
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = ""
    write(3)
    auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    # 1. Keep the old public key; 2. switch to a new key, the old one previous.
    old = tmp_path / "old.pub"
    old.write_text(command("audit_key", "--public"))
    settings.AUDIT_SIGNING_KEY = command("audit_key", "--generate")
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = old.read_text()
    write(2)
    auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    new = tmp_path / "new.pub"
    new.write_text(command("audit_key", "--public"))
    both = tmp_path / "keys.pub"
    both.write_text(command("audit_key", "--public", "--with-previous"))
    return {"old": old, "new": new, "both": both}


def test_the_database_verifies_across_the_rotation(
    rotated: dict[str, Path], settings: Any
) -> None:
    ids = set(AuditCheckpoint.objects.values_list("key_id", flat=True))
    assert len(ids) == 2  # each checkpoint names its own key
    out = command("verify_audit")
    assert "5 entries" in out
    assert "2 checkpoints verified" in out
    # The previous key forgotten: the old checkpoint names a key nobody trusts.
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = ""
    old_id = auditseal.key_id(auditseal.load_public(rotated["old"].read_text()))
    assert f"signed by key {old_id}, not this one" in verify_fails()


def test_an_export_verifies_with_both_public_keys(
    rotated: dict[str, Path], tmp_path: Path
) -> None:
    export = tmp_path / "audit.jsonl"
    export.write_text("".join(auditexport.jsonl_lines()))
    new, old, both = (str(rotated[k]) for k in ("new", "old", "both"))
    assert "OK" in command("verify_audit", "--file", str(export), "--public-key", both)
    assert "OK" in command(
        "verify_audit", "--file", str(export), "--public-key", new, "--public-key", old
    )
    assert "not this one" in verify_fails("--file", str(export), "--public-key", new)
    assert len(auditseal.load_publics(rotated["both"].read_text())) == 2


def test_a_checkpoint_naming_a_previous_key_must_be_signed_by_it(
    rotated: dict[str, Path], settings: Any
) -> None:
    """Knowing a previous key's id is not enough: a checkpoint forged under it
    with another key fails its signature."""
    settings.AUDIT_SIGNING_KEY = command("audit_key", "--generate")  # an intruder's
    forged = auditseal.seal(AuditCheckpoint.Reason.MANUAL, sequence=4)
    assert forged is not None
    old_id = auditseal.key_id(auditseal.load_public(rotated["old"].read_text()))
    content = forged.content() | {"key_id": old_id}
    problem = auditseal.signature_problem(
        content, auditseal.load_publics(rotated["both"].read_text())
    )
    assert problem is not None
    assert "does not match its content" in problem


def test_unreadable_previous_keys_are_a_clear_error(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY = auditseal.new_private_pem()
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = "not a key"
    with pytest.raises(auditseal.AuditKeyError, match="AUDIT_PREVIOUS_PUBLIC_KEYS"):
        auditseal.trusted_keys()
