"""Prompt audio checks: the contract's WAV format, duration and size (no database)."""

from __future__ import annotations

import io
import wave

import pytest

from callbot.ivr.audio import MAX_BYTES, PromptAudioError, check_prompt_audio
from callbot.ivr.prompts import SHIPPED_DIR, SHIPPED_PROMPTS


def make_wav(
    seconds: float = 1.0, rate: int = 16000, channels: int = 1, width: int = 2
) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(b"\0" * int(seconds * rate) * channels * width)
    return buffer.getvalue()


def check(data: bytes) -> float:
    return check_prompt_audio(io.BytesIO(data), len(data)).duration


def test_a_mono_16_bit_16_khz_wav_passes_with_its_duration() -> None:
    assert check(make_wav(2.5)) == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 8000}, "8000 Hz (needs 16000 Hz)"),
        ({"channels": 2}, "2 channels (needs 1, mono)"),
        ({"width": 1}, "8-bit samples (needs 16-bit)"),
    ],
)
def test_other_formats_are_rejected_naming_what_is_wrong(
    kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(PromptAudioError, match="mono 16-bit 16 kHz") as raised:
        check(make_wav(**kwargs))
    assert message in str(raised.value)


def test_a_file_that_is_not_wav_is_rejected() -> None:
    with pytest.raises(PromptAudioError, match="not a PCM WAV file"):
        check(b"ID3\x03\x00 an mp3, really" * 10)


def test_too_short_and_too_long_prompts_are_rejected() -> None:
    with pytest.raises(PromptAudioError, match=r"at least 0\.2 s"):
        check(make_wav(0.1))
    with pytest.raises(PromptAudioError, match="at most 60 s"):
        check(make_wav(61.0))


def test_a_file_over_the_size_limit_is_rejected_before_reading_it() -> None:
    with pytest.raises(PromptAudioError, match="at most 2 MB"):
        check_prompt_audio(io.BytesIO(b""), MAX_BYTES + 1)


@pytest.mark.parametrize("name", sorted(SHIPPED_PROMPTS))
def test_every_shipped_prompt_is_in_the_contract_format(name: str) -> None:
    path = SHIPPED_DIR / f"{name}.wav"
    with path.open("rb") as stream:
        audio = check_prompt_audio(stream, path.stat().st_size)
    assert 0.2 <= audio.duration <= 15
