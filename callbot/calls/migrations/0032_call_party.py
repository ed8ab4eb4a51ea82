"""Whom the bot called or passed a call to, in the history's row and search.

Two summary columns on calls (``CallSummary.party_display``, ``party_ids``):
the names, and the ids and numbers each between spaces, of the targets of a
call the bot placed and of every transfer and redirect Graph accepted. Calls
stored before them are filled from their targets and their actions (the rule
copied here, as migrations must not import code that may change after them).

On PostgreSQL the calls' word index (migration 0020) is made again over the
subject, the caller's name and the party's names, and a trigram index on
``upper(party_ids)`` serves a whole id's or a number's ``LIKE`` on the party
(``dashboard.history_search``); the expressions must stay identical to the
search's. SQLite runs the same tests as scans.
"""

from django.db import migrations, models

BATCH = 2000
DISPLAY_MAX, IDS_MAX = 255, 1024
WORDS_OLD = "history_word_prefixes(subject || ' ' || source_display)"
WORDS_NEW = (
    "history_word_prefixes(subject || ' ' || source_display || ' ' || party_display)"
)


def _party(target):
    if not isinstance(target, dict):
        return "", ""
    identity = target.get("identity")
    if isinstance(identity, dict):
        for member in identity.values():
            if isinstance(member, dict):
                ident = str(member.get("id") or "")
                return str(member.get("displayName") or ident), ident
        return "", ""
    ident = str(target.get("user_id") or target.get("phone") or "")
    return str(target.get("display_name") or ident), ident


def _columns(targets):
    names, ids = [], []
    for target in targets:
        name, ident = _party(target)
        if ident and ident not in ids:
            ids.append(ident)
            if name and name not in names:
                names.append(name)
    display = ", ".join(names)
    while len(display) > DISPLAY_MAX and names:
        names.pop()
        display = ", ".join(names)
    kept = f" {' '.join(ids)} " if ids else ""
    while len(kept) > IDS_MAX and ids:
        ids.pop()
        kept = f" {' '.join(ids)} " if ids else ""
    return display, kept


def backfill(apps, schema_editor):
    Call = apps.get_model("calls", "Call")
    Action = apps.get_model("calls", "Action")
    passed = {}
    for call_id, parameters in (
        Action.objects.filter(
            kind__in=("transfer", "redirect"),
            status__in=("sent", "completed"),
            call__isnull=False,
        )
        .order_by("id")
        .values_list("call_id", "parameters")
        .iterator(chunk_size=BATCH)
    ):
        target = (parameters or {}).get("target")
        if target:
            passed.setdefault(call_id, []).append(target)
    todo = Call.objects.filter(
        models.Q(direction="outgoing") | models.Q(pk__in=list(passed))
    ).only("id", "direction", "targets")
    changed = []
    for call in todo.order_by("id").iterator(chunk_size=BATCH):
        own = list(call.targets or []) if call.direction == "outgoing" else []
        display, ids = _columns(own + passed.get(call.pk, []))
        if ids:
            call.party_display, call.party_ids = display, ids
            changed.append(call)
        if len(changed) >= BATCH:
            Call.objects.bulk_update(changed, ["party_display", "party_ids"])
            changed = []
    Call.objects.bulk_update(changed, ["party_display", "party_ids"])


def indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS call_words_idx")
    schema_editor.execute(f"CREATE INDEX call_words_idx ON calls_call USING gin ({WORDS_NEW})")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS call_party_ids_trgm_idx ON calls_call "
        "USING gin (upper(party_ids) gin_trgm_ops)"
    )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS call_party_ids_trgm_idx")
    schema_editor.execute("DROP INDEX IF EXISTS call_words_idx")
    schema_editor.execute(f"CREATE INDEX call_words_idx ON calls_call USING gin ({WORDS_OLD})")


class Migration(migrations.Migration):
    dependencies = [("calls", "0031_alert_ringing_within_answer_window")]

    operations = [
        migrations.AddField(
            model_name="call",
            name="party_display",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="call",
            name="party_ids",
            field=models.CharField(blank=True, max_length=1024),
        ),
        migrations.RunPython(indexes, drop_indexes),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
