"""Chain the audit entries written before the hash chain: in the order they were
written (time, then id), each gets its sequence, prev_hash and entry_hash.

The canonical form is copied from ``callbot.calls.auditchain`` as it was when this
migration was written (a migration must not change when that module does).
"""

import hashlib
import ipaddress
import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations

GENESIS = "0" * 64
CONTENT_FIELDS = (
    "actor_id",
    "actor_name",
    "by_bot",
    "action",
    "target",
    "call_id",
    "action_ref",
    "outcome",
    "detail",
    "client_ip",
    "created_at",
)


def _ip(value):
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _hash(entry, sequence, prev_hash):
    content = {name: getattr(entry, name) for name in CONTENT_FIELDS}
    content["created_at"] = (
        entry.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    )
    content["detail"] = json.loads(json.dumps(entry.detail or {}, cls=DjangoJSONEncoder))
    content["sequence"] = sequence
    content["prev_hash"] = prev_hash
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def chain_existing(apps, schema_editor):
    AuditEntry = apps.get_model("calls", "AuditEntry")
    prev = GENESIS
    for sequence, entry in enumerate(
        AuditEntry.objects.order_by("created_at", "id").iterator(), start=1
    ):
        entry.detail = json.loads(json.dumps(entry.detail or {}, cls=DjangoJSONEncoder))
        entry.client_ip = _ip(entry.client_ip)
        entry.sequence = sequence
        entry.prev_hash = prev
        entry.entry_hash = _hash(entry, sequence, prev)
        entry.save(
            update_fields=["detail", "client_ip", "sequence", "prev_hash", "entry_hash"]
        )
        prev = entry.entry_hash


class Migration(migrations.Migration):
    dependencies = [("calls", "0006_audit_hash_chain")]

    operations = [migrations.RunPython(chain_existing, migrations.RunPython.noop)]
