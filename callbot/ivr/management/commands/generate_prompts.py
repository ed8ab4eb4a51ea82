"""``manage.py generate_prompts``: speak the shipped prompts into WAV files.

Needs espeak-ng and sox (``make prompts`` runs this); the results are committed, so
a fresh clone needs neither.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.ivr import audio
from callbot.ivr.prompts import HOLD_MUSIC, SHIPPED_DIR, SHIPPED_PROMPTS


class Command(BaseCommand):
    help = "Generate the shipped IVR prompts (mono 16-bit 16 kHz WAV) with espeak-ng and sox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--voice", default="en-us")
        parser.add_argument("--out", type=Path, default=SHIPPED_DIR)

    def handle(self, *args: Any, **options: Any) -> None:
        espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
        if espeak is None or sox is None:
            raise CommandError(
                "espeak-ng and sox are needed (apt-get install espeak-ng sox)."
            )
        out: Path = options["out"]
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            for name, text in SHIPPED_PROMPTS.items():
                spoken = Path(scratch) / f"{name}.wav"
                target = out / f"{name}.wav"
                speak = [espeak, "-v", options["voice"], "-s", "150", "-w", str(spoken)]
                # Resample to the contract's format; a little silence either side.
                convert = [sox, str(spoken), "-r", "16000", "-c", "1", "-b", "16"]
                convert += ["-e", "signed-integer", str(target), "pad", "0.2", "0.3"]
                subprocess.run([*speak, text], check=True)  # noqa: S603 (our own text)
                subprocess.run(convert, check=True)  # noqa: S603
                with target.open("rb") as stream:
                    info = audio.check_prompt_audio(stream, target.stat().st_size)
                self.stdout.write(f"{target} {info.duration:.1f} s")
        music = out / f"{HOLD_MUSIC}.wav"
        music.write_bytes(audio.hold_music())
        self.stdout.write(f"{music} (synthesised)")
