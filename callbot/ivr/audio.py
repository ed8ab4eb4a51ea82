"""Checks on prompt audio: the contract's format for service-hosted media prompts.

Graph plays prompts only from WAV files with one channel, 16-bit samples at 16,000 Hz
(contract §6.9 and §12), and the hold music Callbot ships. Pure Python (the
``wave`` module); no Django.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from typing import BinaryIO

CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit samples
SAMPLE_RATE = 16_000
MIN_SECONDS = 0.2
MAX_SECONDS = 60.0
# One minute of 16 kHz 16-bit mono is 1.92 MB; leave room for headers and chunks.
MAX_BYTES = 2 * 1024 * 1024


class PromptAudioError(ValueError):
    """Audio that Graph would not play as a prompt; the message says why."""


@dataclass(frozen=True)
class PromptAudio:
    channels: int
    sample_width: int
    sample_rate: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def check_prompt_audio(stream: BinaryIO, size: int) -> PromptAudio:
    """Read a WAV header from ``stream`` (``size`` bytes long) and check it.

    Raises ``PromptAudioError`` naming the first problem: too big, not a WAV file,
    not PCM, wrong channels, sample width or rate, too short or too long.
    """
    if size > MAX_BYTES:
        raise PromptAudioError(
            f"The file is {size / 1_048_576:.1f} MB; a prompt may be at most "
            f"{MAX_BYTES // 1_048_576} MB."
        )
    try:
        with wave.open(stream, "rb") as wav:
            audio = PromptAudio(
                channels=wav.getnchannels(),
                sample_width=wav.getsampwidth(),
                sample_rate=wav.getframerate(),
                frames=wav.getnframes(),
            )
    except (wave.Error, EOFError) as exc:
        raise PromptAudioError(
            "This is not a PCM WAV file; prompts must be WAV, mono, 16-bit, "
            f"16 kHz ({exc})."
        ) from exc
    problems = []
    if audio.channels != CHANNELS:
        problems.append(f"{audio.channels} channels (needs 1, mono)")
    if audio.sample_width != SAMPLE_WIDTH:
        problems.append(f"{audio.sample_width * 8}-bit samples (needs 16-bit)")
    if audio.sample_rate != SAMPLE_RATE:
        problems.append(f"{audio.sample_rate} Hz (needs 16000 Hz)")
    if problems:
        raise PromptAudioError(
            "Graph plays only mono 16-bit 16 kHz WAV prompts; this file has "
            + ", ".join(problems)
            + "."
        )
    if audio.duration < MIN_SECONDS:
        raise PromptAudioError(
            f"The prompt lasts {audio.duration:.2f} s; it must last at least "
            f"{MIN_SECONDS} s."
        )
    if audio.duration > MAX_SECONDS:
        raise PromptAudioError(
            f"The prompt lasts {audio.duration:.0f} s; it may last at most "
            f"{MAX_SECONDS:.0f} s."
        )
    return audio


def hold_music(seconds: float = 16.0) -> bytes:
    """A quiet, looping chime for callers waiting for a person: a WAV in the
    contract's format (mono, 16-bit, 16 kHz), made from sine tones so no recording
    or licence is needed. The loop ends where it starts (silence), so a flow that
    plays it again and again does not click."""
    notes = [523.25, 659.25, 783.99, 659.25]  # C5 E5 G5 E5, one a second or so
    step = seconds / (len(notes) * 2)
    frames = bytearray()
    total = int(seconds * SAMPLE_RATE)
    for n in range(total):
        t = n / SAMPLE_RATE
        index = int(t / step)
        note = notes[(index // 2) % len(notes)]
        local = t - index * step
        # A soft bell: quick attack, slow decay, silent in the second half-step.
        envelope = 0.0 if index % 2 else min(1.0, local * 40) * math.exp(-3 * local)
        value = (
            0.18
            * envelope
            * (
                math.sin(2 * math.pi * note * t)
                + 0.3 * math.sin(2 * math.pi * 2 * note * t)
            )
        )
        frames += struct.pack("<h", int(max(-1.0, min(1.0, value)) * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(bytes(frames))
    return out.getvalue()
