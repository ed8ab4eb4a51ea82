"""Fill ``IvrSession.path`` of sessions stored before it existed, from their
``history`` (the steps entered, each with the outcome that led there). Copies the
token rules of ``IvrSession._extend_path``."""

import re

from django.db import migrations

PATH_CHARS = 1000
PRESSED = re.compile(r"pressed (\S+)")


def backfill(apps, schema_editor):
    IvrSession = apps.get_model("ivr", "IvrSession")
    for session in IvrSession.objects.filter(path="").iterator(chunk_size=1000):
        path, previous = "", ""
        for entry in session.history or []:
            step = entry.get("step") if isinstance(entry, dict) else None
            if not step:
                continue
            tokens = ""
            pressed = PRESSED.fullmatch(str(entry.get("after") or ""))
            if previous and pressed and pressed.group(1) != "nothing":
                tokens = f" {previous}:{pressed.group(1)}"
            grown = path.rstrip() + tokens + f" {step} "
            if len(grown) > PATH_CHARS:
                break
            path, previous = grown, step
        if path:
            IvrSession.objects.filter(pk=session.pk).update(path=path)


class Migration(migrations.Migration):
    dependencies = [("ivr", "0004_ivr_session_path")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
