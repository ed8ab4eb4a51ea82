"""The audit trail's hash chain, checkpoints, tamper detection, exports and purge.

Tampering is done the way an intruder with database access would: raw SQL past
the ORM (on PostgreSQL with the append-only trigger switched off first).
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

import pytest

from callbot.calls import (
    audit,
    auditchain,
    auditexport,
    auditseal,
    auditverify,
    lifecycle,
    retention,
    tasks,
)
from callbot.calls.auditmodels import AuditImmutableError
from callbot.calls.models import (
    Action,
    AuditCheckpoint,
    AuditEntry,
    Call,
    CallEvent,
)
from tests.factories import ActionFactory, CallFactory

TABLE = AuditEntry._meta.db_table


@pytest.fixture
def signing(settings: Any, tmp_path: Path) -> Path:
    """A signing key of this test's own; the path of its public key file."""
    settings.AUDIT_SIGNING_KEY = auditseal.new_private_pem()
    settings.AUDIT_SIGNING_KEY_GENERATE = False
    public = tmp_path / "audit.pub"
    public.write_text(auditseal.public_pem(auditseal.signing_key().public_key()))
    return public


def write(n: int, start: int = 1, **fields: Any) -> list[AuditEntry]:
    return [
        audit.record(
            None,
            "mute_participant",
            f"target {i}",
            outcome="requested",
            detail={"i": i, "when": timezone.now()},
            client_ip="10.0.0.1",
            **fields,
        )
        for i in range(start, start + n)
    ]


def verify_fails(*args: str) -> str:
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", *args, stdout=io.StringIO())
    assert failed.value.returncode == 1
    return str(failed.value)


def verify_ok(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def raw(sql: str, params: list[Any] | None = None) -> None:
    """SQL past the ORM and, on PostgreSQL, past the append-only trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def renumber(sql_condition: str, by: int) -> None:
    """Move entries' sequences by ``by`` without tripping the unique constraint."""
    raw(f"UPDATE {TABLE} SET sequence = sequence + 1000000 WHERE {sql_condition}")  # noqa: S608
    raw(
        f"UPDATE {TABLE} SET sequence = sequence - 1000000 + %s "  # noqa: S608
        "WHERE sequence > 1000000",
        [by],
    )


# --- the chain ---------------------------------------------------------------------


@pytest.mark.django_db
def test_each_entry_hashes_its_content_and_links_to_the_previous_one(
    signing: Path,
) -> None:
    entries = write(4)
    assert [e.sequence for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == auditchain.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    stored = AuditEntry.objects.get(sequence=3)
    assert auditchain.entry_hash(stored.content()) == stored.entry_hash
    assert stored.by_bot is True
    assert "4 entries (#1 to #4) form an unbroken chain" in verify_ok()


@pytest.mark.django_db
def test_a_rolled_back_request_leaves_no_entry_and_no_gap(signing: Path) -> None:
    write(1)

    def failing_request() -> None:
        with transaction.atomic():
            write(1)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    later = write(1)[0]
    assert later.sequence == 2
    verify_ok()


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_entries_and_checkpoints(
    signing: Path,
) -> None:
    entry = write(1)[0]
    checkpoint = auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    assert checkpoint is not None
    entry.target = "changed"
    with pytest.raises(AuditImmutableError):
        entry.save()
    with pytest.raises(AuditImmutableError):
        entry.delete()
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).update(target="changed")
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditImmutableError):
        AuditCheckpoint.objects.all().delete()
    assert AuditEntry.objects.get().target == "target 1"


@pytest.mark.django_db
def test_deleting_a_call_or_a_user_keeps_their_entries_unchanged(
    signing: Path, bob: Any
) -> None:
    call = CallFactory()
    entry = audit.record(
        bob, "hang_up", "the call", call, outcome="requested", detail={}
    )
    call_id, bob_id = call.pk, bob.pk
    call.delete()
    bob.delete()
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert (kept.call_id, kept.actor_id, kept.actor_name) == (call_id, bob_id, "bob")
    assert AuditEntry.objects.filter(call=call_id).count() == 1
    verify_ok()


@pytest.mark.django_db
def test_an_action_outcome_is_audited_once_linked_to_its_request(
    signing: Path, bob: Any
) -> None:
    call = CallFactory(kind="group")
    action = ActionFactory(call=call, kind="hang_up", status="sent", requested_by=bob)
    request = audit.record(
        bob,
        "hang_up",
        "",
        call,
        outcome="requested",
        detail={"action_id": action.pk},
        action_ref=action.pk,
    )
    lifecycle.record_outcome(
        action.pk, "failed", result_code=403, result_subcode=7505, message="Denied."
    )
    lifecycle.record_outcome(action.pk, "completed")  # already final: no entry
    outcome = AuditEntry.objects.get(action_ref=action.pk, outcome="failed")
    assert outcome.actor_name == "bob"
    assert outcome.call_id == call.pk
    assert outcome.detail["request"] == request.sequence
    assert outcome.detail["result_code"] == 403
    assert outcome.detail["result_subcode"] == 7505
    assert outcome.detail["result_message"] == "Denied."
    assert AuditEntry.objects.filter(action_ref=action.pk).count() == 2
    assert Action.objects.get(pk=action.pk).status == "failed"


# --- tampering -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_edited_entry_is_named(signing: Path) -> None:
    entries = write(5)
    raw(f"UPDATE {TABLE} SET target = 'nobody' WHERE sequence = 3")  # noqa: S608
    message = verify_fails()
    assert message.startswith("FAILED: edited:")
    assert f"entry #3 (id {entries[2].pk}) was edited" in message


@pytest.mark.django_db
def test_a_deleted_entry_is_named(signing: Path) -> None:
    entries = write(5)
    raw(f"DELETE FROM {TABLE} WHERE sequence = 3")  # noqa: S608
    message = verify_fails()
    assert message.startswith("FAILED: deleted:")
    assert "entries #3 to #3 are missing" in message
    assert f"(id {entries[3].pk})" in message


@pytest.mark.django_db
def test_a_deleted_entry_is_named_when_the_rest_were_renumbered(
    signing: Path,
) -> None:
    entries = write(5)
    raw(f"DELETE FROM {TABLE} WHERE sequence = 3")  # noqa: S608
    renumber("sequence > 3", -1)
    message = verify_fails()
    assert message.startswith("FAILED: deleted:")
    assert "entries #3 to #3 were deleted" in message
    assert f"(id {entries[3].pk}) was written as #4" in message


@pytest.mark.django_db
def test_an_inserted_entry_is_named_even_with_a_correct_hash(signing: Path) -> None:
    entries = write(5)
    renumber("sequence >= 3", 1)
    # The intruder knows the algorithm: the forged entry hashes right and
    # links to #2.
    forged: dict[str, Any] = {
        "actor_id": None,
        "actor_name": "alice",
        "by_bot": False,
        "action": "hang_up",
        "target": "forged",
        "call_id": None,
        "action_ref": None,
        "outcome": "requested",
        "detail": {},
        "client_ip": None,
        "created_at": entries[1].created_at,
        "sequence": 3,
        "prev_hash": entries[1].entry_hash,
    }
    forged["entry_hash"] = auditchain.entry_hash(forged)
    raw(
        f"INSERT INTO {TABLE} (actor_name, by_bot, action, target, outcome, detail, "  # noqa: S608
        "created_at, sequence, prev_hash, entry_hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            "alice",
            False,
            "hang_up",
            "forged",
            "requested",
            "{}",
            entries[1].created_at,
            3,
            forged["prev_hash"],
            forged["entry_hash"],
        ],
    )
    forged_id = AuditEntry.objects.get(sequence=3).pk
    message = verify_fails()
    assert message.startswith("FAILED: inserted:")
    assert f"entry #3 (id {forged_id}) was inserted" in message


@pytest.mark.django_db
def test_reordered_entries_are_named(signing: Path) -> None:
    entries = write(5)
    raw(f"UPDATE {TABLE} SET sequence = 1000003 WHERE sequence = 3")  # noqa: S608
    raw(f"UPDATE {TABLE} SET sequence = 3 WHERE sequence = 4")  # noqa: S608
    raw(f"UPDATE {TABLE} SET sequence = 4 WHERE sequence = 1000003")  # noqa: S608
    message = verify_fails()
    assert message.startswith("FAILED: reordered:")
    assert f"now at #3 (id {entries[3].pk}) was written as #4" in message


@pytest.mark.django_db
def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(signing: Path) -> None:
    write(5)
    assert auditseal.seal(AuditCheckpoint.Reason.MANUAL) is not None
    # Edit #2 and recompute every hash after it: the chain is consistent again,
    # but no longer the one the checkpoint signed.
    raw(f"UPDATE {TABLE} SET target = 'nobody' WHERE sequence = 2")  # noqa: S608
    prev = AuditEntry.objects.get(sequence=1).entry_hash
    for seq in range(2, 6):
        content = AuditEntry.objects.get(sequence=seq).content()
        content["prev_hash"] = prev
        prev = auditchain.entry_hash(content)
        raw(
            f"UPDATE {TABLE} SET prev_hash = %s, entry_hash = %s WHERE sequence = %s",  # noqa: S608
            [content["prev_hash"], prev, seq],
        )
    message = verify_fails()
    assert message.startswith("FAILED: checkpoint:")
    assert "entry #5" in message


@pytest.mark.django_db
def test_entries_cut_from_the_end_are_caught_by_the_checkpoint(signing: Path) -> None:
    write(5)
    auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    raw(f"DELETE FROM {TABLE} WHERE sequence >= 4")  # noqa: S608
    message = verify_fails()
    assert "entries #4 to #5 are missing" in message


@pytest.mark.django_db
def test_a_forged_checkpoint_signature_is_named(signing: Path) -> None:
    write(2)
    checkpoint = auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    assert checkpoint is not None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE calls_auditcheckpoint DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE calls_auditcheckpoint SET sequence = 1 WHERE id = %s",
            [checkpoint.pk],
        )
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE calls_auditcheckpoint ENABLE TRIGGER USER")
    assert "signature that does not match" in verify_fails()


# --- checkpoints and keys ------------------------------------------------------------


@pytest.mark.django_db
def test_the_periodic_checkpoint_seals_only_a_moved_head(signing: Path) -> None:
    assert tasks.seal_audit_chain() is None  # nothing to seal yet
    write(3)
    assert tasks.seal_audit_chain() == 3
    assert tasks.seal_audit_chain() is None
    write(1)
    assert tasks.seal_audit_chain() == 4
    assert "2 checkpoints verified" in verify_ok()


@pytest.mark.django_db
def test_the_embedded_default_generates_its_key_once(
    settings: Any, tmp_path: Path
) -> None:
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_GENERATE = True
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "key.pem"
    out = io.StringIO()
    call_command("audit_key", "--public", stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("-----BEGIN PUBLIC KEY-----")
    assert (settings.AUDIT_SIGNING_KEY_PATH.stat().st_mode & 0o777) == 0o600
    again = io.StringIO()
    call_command("audit_key", "--public", stdout=again, stderr=io.StringIO())
    assert again.getvalue() == out.getvalue()


def test_without_a_key_elsewhere_signing_says_what_to_set(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_GENERATE = False
    with pytest.raises(auditseal.AuditKeyError, match="AUDIT_SIGNING_KEY"):
        auditseal.signing_key()


# --- exports -------------------------------------------------------------------------


@pytest.fixture
def exported(signing: Path, tmp_path: Path) -> Path:
    write(7)
    path = tmp_path / "export.jsonl"
    call_command("export_audit", "-o", str(path), stderr=io.StringIO())
    return path


@pytest.mark.django_db
def test_an_export_verifies_offline_with_the_public_key_alone(
    exported: Path, signing: Path, settings: Any
) -> None:
    settings.AUDIT_SIGNING_KEY = ""  # offline: no private key here
    lines = exported.read_text().splitlines()
    header = json.loads(lines[0])
    # Seven entries and the export's own, sealed before the file is written.
    assert header["sealed_to"] == 8
    assert header["filtered"] is False
    assert json.loads(lines[1])["type"] == "checkpoint"
    assert json.loads(lines[-1])["action"] == "export.audit"
    out = verify_ok("--file", str(exported), "--public-key", str(signing))
    assert "8 entries (#1 to #8) form an unbroken chain" in out


@pytest.mark.django_db
def test_an_edited_export_is_named(exported: Path, signing: Path) -> None:
    lines = exported.read_text().splitlines()
    record = json.loads(lines[5])
    record["outcome"] = "refused"
    lines[5] = json.dumps(record)
    exported.write_text("\n".join(lines) + "\n")
    message = verify_fails("--file", str(exported), "--public-key", str(signing))
    assert f"entry #{record['sequence']} (id {record['id']}) was edited" in message


@pytest.mark.django_db
def test_an_export_with_a_line_removed_is_named(exported: Path, signing: Path) -> None:
    lines = exported.read_text().splitlines()
    del lines[4]
    exported.write_text("\n".join(lines) + "\n")
    assert "are missing" in verify_fails(
        "--file", str(exported), "--public-key", str(signing)
    )


@pytest.mark.django_db
def test_an_export_checked_with_another_key_fails(
    exported: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pub"
    other.write_text(
        auditseal.public_pem(
            auditseal._parse_private(auditseal.new_private_pem()).public_key()
        )
    )
    assert "not this one" in verify_fails(
        "--file", str(exported), "--public-key", str(other)
    )


@pytest.mark.django_db
def test_a_file_that_is_not_an_export_is_refused_clearly(
    signing: Path, tmp_path: Path
) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("hello\n")
    with pytest.raises(CommandError, match="line 1: not JSON") as failed:
        call_command("verify_audit", "--file", str(path), "--public-key", str(signing))
    assert failed.value.returncode == 2


@pytest.mark.django_db
def test_a_csv_export_lists_every_entry_and_defuses_formulas(
    signing: Path, tmp_path: Path
) -> None:
    write(2)
    audit.record(None, "note", "=HYPERLINK(1)", outcome="saved", detail={})
    path = tmp_path / "audit.csv"
    call_command(
        "export_audit", "--format", "csv", "-o", str(path), stderr=io.StringIO()
    )
    rows = path.read_text().splitlines()
    assert rows[0].startswith("sequence,created_at,actor_name")
    assert len(rows) == 5  # the header, three entries, the export's own entry
    assert "'=HYPERLINK(1)" in rows[3]


# --- purge ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_keeps_the_chain_verifiable_across_the_gap(
    signing: Path, tmp_path: Path
) -> None:
    long_ago = timezone.now() - timedelta(days=400)
    old_call = CallFactory(state="terminated", terminated_at=long_ago)
    CallEvent.objects.create(
        call=old_call,
        sequence=1,
        digest="d" * 64,
        change_type="updated",
        resource_url="/communications/calls/x",
        resource_kind="call",
        payload={},
        received_at=long_ago,
    )
    live_call = CallFactory(state="established")
    old = write(3)
    audit.record(None, "hang_up", "", old_call, outcome="requested", detail={})
    cutoff = timezone.now()
    kept = write(2)
    out = io.StringIO()
    call_command("purge", "--before", cutoff.isoformat(), "--dry-run", stdout=out)
    assert "would delete 1 calls, 1 events" in out.getvalue()
    assert "4 audit entries" in out.getvalue()
    assert AuditEntry.objects.count() == 6  # the dry run deleted nothing

    result = retention.purge(cutoff, audit_before=cutoff)
    assert (result.calls, result.events, result.audit_entries) == (1, 1, 4)
    assert not Call.objects.filter(pk=old_call.pk).exists()
    assert Call.objects.filter(pk=live_call.pk).exists()
    assert not AuditEntry.objects.filter(pk=old[0].pk).exists()
    assert AuditEntry.objects.order_by("sequence").first().pk == kept[0].pk
    entry = AuditEntry.objects.get(action="purge")
    assert entry.sequence == 7
    assert entry.detail["audit_entries"] == 4
    assert AuditCheckpoint.objects.get(reason="purge").sequence == 4
    assert "3 entries (#5 to #7) form an unbroken chain" in verify_ok()
    # The export of what is left verifies offline too.
    path = tmp_path / "after-purge.jsonl"
    call_command("export_audit", "-o", str(path), stderr=io.StringIO())
    verify_ok("--file", str(path), "--public-key", str(signing))


@pytest.mark.django_db
def test_purging_everything_continues_the_chain_from_the_checkpoint(
    signing: Path,
) -> None:
    write(3)
    retention.purge(timezone.now(), audit_before=timezone.now())
    assert list(AuditEntry.objects.values_list("sequence", flat=True)) == [4]
    write(1)
    assert "2 entries (#4 to #5)" in verify_ok()


@pytest.mark.django_db
def test_a_purge_before_a_future_date_is_refused(signing: Path) -> None:
    with pytest.raises(CommandError, match="in the future"):
        call_command("purge", "--before", "2999-01-01")


# --- PostgreSQL ------------------------------------------------------------------------


def run_sql(*statements: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@pytest.mark.needs_postgres
@pytest.mark.django_db
def test_postgres_refuses_update_and_delete_of_entries(signing: Path) -> None:
    write(2)
    # Even purge's switch deletes nothing that no checkpoint sealed.
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(
            "SET LOCAL callbot.audit_purge = 'on'",
            f"DELETE FROM {TABLE} WHERE sequence = 1",  # noqa: S608
        )
    auditseal.seal(AuditCheckpoint.Reason.MANUAL)
    for sql in (
        f"UPDATE {TABLE} SET target = 'x' WHERE sequence = 1",  # noqa: S608
        f"DELETE FROM {TABLE} WHERE sequence = 1",  # noqa: S608
        "UPDATE calls_auditcheckpoint SET sequence = 1",
        "DELETE FROM calls_auditcheckpoint",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            run_sql(sql)
    assert AuditEntry.objects.count() == 2
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(signing: Path) -> None:
    threads, each = 6, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with transaction.atomic():
                    audit.record(
                        None, "write", f"thread {n} #{i}", outcome="saved", detail={}
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    sequences = list(
        AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, threads * each + 1))
    assert auditverify.verify_database().ok


@pytest.mark.django_db
def test_the_daily_retention_applies_the_settings(signing: Path, settings: Any) -> None:
    settings.CALL_RETENTION_DAYS = 0
    settings.AUDIT_RETENTION_DAYS = 0
    assert tasks.apply_retention() is None  # keep forever
    now = timezone.now()
    old = CallFactory(state="terminated", terminated_at=now - timedelta(days=40))
    recent = CallFactory(state="terminated", terminated_at=now - timedelta(days=5))
    write(2)
    settings.CALL_RETENTION_DAYS = 30
    result = tasks.apply_retention()
    assert result is not None
    assert (result["calls"], result["audit_entries"]) == (1, 0)
    assert list(Call.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Call.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(action="purge").count() == 1
    verify_ok()


@pytest.mark.django_db
def test_an_export_stops_at_its_own_checkpoint_while_the_trail_moves_on(
    signing: Path,
) -> None:
    write(3)
    blocks = auditexport.jsonl_lines()
    header = next(blocks)  # sealed #3 here
    write(2)
    auditseal.seal(AuditCheckpoint.Reason.MANUAL)  # seals #5, after the export's
    text = header + "".join(blocks)
    public = auditseal.signing_key().public_key()
    report = auditverify.verify_file(io.StringIO(text), public)
    assert report.ok, report.summary()
    assert (report.first, report.last) == (1, 3)
