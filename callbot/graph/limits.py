"""What the Graph calls contract allows (graph-calls-contract.md §2, §6, §12), in one
place: the request builders check them, and the services and the IVR validate user
input against the same values, so a limit is written once.

Pure constants; nothing here imports Django or does I/O.
"""

from __future__ import annotations

import re

MAX_CLIENT_CONTEXT = 256
MAX_PROMPTS = 20
MAX_RECORD_PROMPTS = 1
# recordResponse timers, seconds (§6.10).
RECORD_TIMER_RANGE = (1, 120)
MAX_GROUP_CALL_TARGETS = 5
MAX_INVITEES = 5
MAX_REDIRECT_TARGETS = 25
REDIRECT_TIMEOUT_RANGE = (15, 90)
# An incoming call must be answered within this many seconds of its notification
# (§6.4; 5 s for policy-based recording invites); Microsoft then ends it (408).
ANSWER_WINDOW_SECONDS = 15

MODALITIES = frozenset({"audio", "video", "videoBasedScreenSharing", "data"})
ACCEPTED_MODALITIES = frozenset({"audio", "video", "videoBasedScreenSharing"})
REJECT_REASONS = frozenset({"none", "busy", "forbidden"})
SCREEN_SHARING_ROLES = frozenset({"viewer", "sharer"})
RECORDING_STATUSES = ("notRecording", "recording", "failed")
# toneInfo names (§2.7); sendDtmfTones takes these.
DTMF_TONES = frozenset(
    {f"tone{i}" for i in range(10)} | {"star", "pound", "a", "b", "c", "d", "flash"}
)
# recordResponse ``stopTones`` are DTMF characters, not toneInfo names (§6.10).
STOP_TONE_CHARS = frozenset("0123456789*#ABCD")
# Keys a caller or the bot can press, as people type them.
DTMF_KEYS = frozenset("0123456789*#ABCDabcd")

# Identities (§2.3): an Azure AD object id, and a phone number in E.164.
GUID_PATTERN = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
