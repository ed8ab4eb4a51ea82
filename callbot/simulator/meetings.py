"""Online meetings (contract §10): the book of meetings and their join coordinates.

Meetings created through Graph (``POST /users/{id}/onlineMeetings`` and its idempotent
``.../createOrGet``) and through the control API live here, findable by id, thread id, join URL and numeric join id. A bot
may also join a meeting thread the emulator never saw (a real tenant has many); such
a meeting is entered into the book on first join.
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote_plus

from callbot.simulator.model import Meeting


class MeetingBook:
    """All known meetings, with the lookups the Graph routes and joins need."""

    def __init__(self, tenant_id: str, rng: random.Random) -> None:
        self.tenant_id = tenant_id
        self.rng = rng
        self.by_id: dict[str, Meeting] = {}
        self._by_thread: dict[str, Meeting] = {}
        self._by_join_id: dict[str, Meeting] = {}
        # (organizer id, externalId) -> the meeting ``createOrGet`` made (§10.2).
        self._by_external: dict[tuple[str, str], Meeting] = {}
        self.tokens: dict[str, Meeting] = {}

    def reset(self) -> None:
        self.by_id.clear()
        self._by_thread.clear()
        self._by_join_id.clear()
        self._by_external.clear()
        self.tokens.clear()

    def create(
        self,
        organizer_id: str,
        organizer_name: str = "Organizer",
        subject: str = "",
        start: str | None = None,
        end: str | None = None,
        passcode_required: bool = False,
        attendees: list[dict[str, Any]] | None = None,
        thread_id: str | None = None,
        external_id: str | None = None,
    ) -> Meeting:
        """Create a meeting with fresh coordinates (or for a known ``thread_id``)."""
        now = datetime.now(UTC)
        if thread_id is None:
            raw = base64.b64encode(self.rng.randbytes(36)).decode().rstrip("=")
            thread_id = (
                f"19:meeting_{raw.replace('+', 'A').replace('/', 'B')}@thread.v2"
            )
        context = json.dumps(
            {"Tid": self.tenant_id, "Oid": organizer_id}, separators=(",", ":")
        )
        join_web_url = (
            "https://teams.microsoft.com/l/meetup-join/"
            f"{quote(thread_id, safe='')}/0?context={quote(context, safe='')}"
        )
        meeting_id = (
            base64.urlsafe_b64encode(f"1*{organizer_id}*0**{thread_id}".encode())
            .decode()
            .rstrip("=")
        )
        join_id = str(self.rng.randrange(10**11, 10**12))
        passcode = None
        if passcode_required:
            alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
            passcode = "".join(self.rng.choice(alphabet) for _ in range(6))
        meeting = Meeting(
            id=meeting_id,
            subject=subject,
            organizer_id=organizer_id,
            organizer_name=organizer_name,
            tenant_id=self.tenant_id,
            thread_id=thread_id,
            join_web_url=join_web_url,
            join_meeting_id=join_id,
            passcode=passcode,
            start=start or now.isoformat().replace("+00:00", "Z"),
            end=end or (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            created=now.isoformat().replace("+00:00", "Z"),
            attendees=attendees or [],
            external_id=external_id,
        )
        self.by_id[meeting.id] = meeting
        if external_id is not None:
            self._by_external[(organizer_id, external_id)] = meeting
        self._by_thread[thread_id.lower()] = meeting
        self._by_join_id[join_id] = meeting
        return meeting

    def by_external_id(self, organizer_id: str, external_id: str) -> Meeting | None:
        """The meeting ``createOrGet`` made for this organizer under ``external_id``:
        the tenant, the user and the external id together name it (§10.2)."""
        return self._by_external.get((organizer_id, external_id))

    def by_thread(self, thread_id: str) -> Meeting | None:
        return self._by_thread.get(thread_id.lower())

    def by_join_id(self, join_id: str) -> Meeting | None:
        return self._by_join_id.get(join_id)

    def by_join_url(self, url: str) -> Meeting | None:
        """Find by ``joinWebUrl``, comparing decoded forms (clients re-encode it)."""
        wanted = unquote_plus(url).strip()
        for meeting in self.by_id.values():
            if unquote_plus(meeting.join_web_url) == wanted:
                return meeting
        return None

    def issue_token(self, meeting: Meeting) -> str:
        """A ``tokenMeetingInfo.token`` for an invite, good for rejoining (§2.5)."""
        token = base64.urlsafe_b64encode(self.rng.randbytes(24)).decode()
        self.tokens[token] = meeting
        return token
