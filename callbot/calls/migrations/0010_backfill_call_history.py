"""Fill the history's summary columns of calls stored before they existed.

``outcome`` and ``duration_seconds`` follow ``Call.refresh_summary`` (copied here,
as migrations must not import the code that may change after them); ``source_id``
comes from the stored ``source`` identity set.
"""

from django.db import migrations

BATCH = 2000
TRANSFER_COMPLETED_SUBCODE = 7015


def _outcome(call):
    if call.state != "terminated":
        return "live"
    if call.result_code is not None and call.result_code >= 400:
        return "failed"
    if call.result_subcode == TRANSFER_COMPLETED_SUBCODE:
        return "transferred"
    return "answered" if call.established_at is not None else "unanswered"


def _duration(call):
    if call.established_at is None or call.terminated_at is None:
        return 0
    return max(0, round((call.terminated_at - call.established_at).total_seconds()))


def _source_id(source):
    identity = source.get("identity") if isinstance(source, dict) else None
    if not isinstance(identity, dict):
        return ""
    for member in identity.values():
        if isinstance(member, dict) and member.get("id"):
            return str(member["id"])[:128]
    return ""


def backfill(apps, schema_editor):
    Call = apps.get_model("calls", "Call")
    last = 0
    while True:
        batch = list(Call.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not batch:
            return
        for call in batch:
            call.outcome = _outcome(call)
            call.duration_seconds = _duration(call)
            call.source_id = call.source_id or _source_id(call.source)
        Call.objects.bulk_update(batch, ["outcome", "duration_seconds", "source_id"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("calls", "0009_call_history_columns")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
