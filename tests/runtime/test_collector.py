"""Start-up objects are frozen out of the collector's generations in the web
process, so a full collection walks only what was made since."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from callbot.runtime import inprocess

ROOT = Path(__file__).resolve().parents[2]


def test_the_asgi_application_freezes_what_start_up_made() -> None:
    script = (
        "import gc\n"
        "assert gc.get_freeze_count() == 0\n"
        "import callbot.asgi\n"
        "print(gc.get_freeze_count())\n"
        "print(len(gc.get_objects()))\n"
    )
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.pop(inprocess.ENV_FLAG, None)  # no worker thread in this process
    frozen, tracked = (int(line) for line in run_python(script, env).split())
    # Django, Channels, Celery and Callbot: well over a hundred thousand objects,
    # none left for full collections to walk.
    assert frozen > 50_000
    assert tracked < frozen / 10


def test_a_large_rosters_body_is_freed_before_a_collection_sees_it() -> None:
    # What a 1,000-person roster's body decodes into lives through its request
    # and dies with it: no collection should walk it (and move it on to the
    # generations whose collections walk everything).
    script = (
        "import gc, orjson\n"
        "from callbot.runtime.collector import freeze_startup\n"
        "person = {'id': 'p', 'info': {'identity': {'user': {'id': 'u'}}},\n"
        "          'isMuted': False, 'mediaStreams': [{'mediaType': 'audio'}]}\n"
        "body = orjson.dumps({'value': [{'resourceData': [person] * 1000}]})\n"
        "freeze_startup()\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: seen.append(phase))\n"
        "for _ in range(5):\n"
        "    document = orjson.loads(body)\n"
        "    del document\n"
        "print(len(seen))\n"
    )
    assert int(run_python(script, {**os.environ})) == 0


def run_python(script: str, env: dict[str, str]) -> str:
    """What ``script`` prints, run by a fresh interpreter with Callbot's settings."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "callbot.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout
