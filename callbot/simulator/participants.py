"""Roster actions of the bot: self mute, invite, mute/remove others, hold music,
screen-sharing role and recording status (contract §6.8, §6.14-§6.16, §7.11).

Which actions answer already ``completed`` and which answer ``running`` and report
later through an operation ``deleted`` notification follows contract §5 exactly.
"""

from __future__ import annotations

from typing import Any

from callbot.simulator import notices, validate
from callbot.simulator.engine import Engine, ri
from callbot.simulator.errors import bad_request, conflict, not_found
from callbot.simulator.model import Call, Operation, new_id, result_info

OK = (200, 0, "Action completed successfully.")
RESULT_REPLACED = (
    200,
    5300,
    "The call was replaced: the participant moved to another call.",
)


def new_operation(
    call: Call, type_name: str, body: dict[str, Any], status: str
) -> Operation:
    """Register an operation on ``call``; ``completed`` ones carry their result already."""
    operation = Operation(
        id=new_id(),
        type_name=type_name,
        call_id=call.id,
        client_context=validate.client_context(body),
        status=status,
        result=ri(OK) if status == "completed" else None,
    )
    call.operations[operation.id] = operation
    return operation


def require_established(call: Call) -> None:
    if call.state != "established":
        raise conflict(f"Call is {call.state}; the action needs an established call.")


def require_group(call: Call, action: str) -> None:
    if call.kind == "p2p":
        raise bad_request(f"{action} is only available in group calls and meetings.")


class ParticipantDesk:
    """The bot's roster actions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _participant(self, call: Call, participant_id: str) -> Any:
        participant = call.conversation.participants.get(participant_id)
        if participant is None:
            raise not_found(f"Participant '{participant_id}'")
        return participant

    def mute_self(self, call: Call, body: dict[str, Any], muted: bool) -> Operation:
        """``POST .../mute`` / ``.../unmute``: completed at once, then a roster update."""
        validate.client_context(body)
        require_established(call)
        require_group(call, "Muting the bot")
        participant = self._participant(call, call.my_participant_id)
        participant.muted = muted
        self.engine.roster_changed(call.conversation, [participant], [])
        kind = "muteParticipantOperation" if muted else "unmuteParticipantOperation"
        return new_operation(call, kind, body, "completed")

    def mute_other(
        self, call: Call, participant_id: str, body: dict[str, Any]
    ) -> Operation:
        """``POST .../participants/{id}/mute``: completed, roster shows ``isMuted``."""
        validate.client_context(body)
        require_established(call)
        require_group(call, "Muting a participant")
        participant = self._participant(call, participant_id)
        participant.muted = True
        self.engine.roster_changed(call.conversation, [participant], [])
        return new_operation(call, "muteParticipantOperation", body, "completed")

    def remove(self, call: Call, participant_id: str, roles: frozenset[str]) -> None:
        """``DELETE .../participants/{id}``: 204, roster without them ("removed")."""
        self.engine.require(
            roles, "Calls.JoinGroupCall.All", "Calls.JoinGroupCallAsGuest.All"
        )
        require_group(call, "Removing a participant")
        participant = self._participant(call, participant_id)
        if participant.is_bot_leg:
            leg = next(
                (
                    c
                    for c in self.engine.calls.values()
                    if c.my_participant_id == participant_id
                ),
                None,
            )
            if leg is not None:
                self.engine.end(
                    leg,
                    result_info(
                        200,
                        5000,
                        "Removed from the conversation by another participant.",
                    ),
                )
                return
        self.engine.remove_participant(call.conversation, participant_id, "removed")
        self.engine.events.add(
            "graph", f"bot removed {participant.display_name}", callId=call.id
        )

    def invite(
        self, call: Call, body: dict[str, Any], roles: frozenset[str]
    ) -> Operation:
        """``POST .../participants/invite``: ``Running``, then operation and roster.

        With ``replacesCallId`` only the first invitee counts and the replaced call
        ends after the roster shows them (contract §7.11). Inviting into an
        established peer-to-peer call turns it into a group call.
        """
        engine = self.engine
        engine.require(roles, "Calls.InitiateGroupCall.All")
        invitees = validate.array(body.get("participants"), "participants")
        if not 1 <= len(invitees) <= 5:
            raise bad_request("'participants' must hold 1 to 5 entries.")
        for index, invitee in enumerate(invitees):
            validate.invitation(invitee, f"participants[{index}]")
        validate.client_context(body)
        require_established(call)
        replaces = invitees[0].get("replacesCallId")
        if replaces:
            invitees = invitees[:1]
        echoed = []
        for invitee in invitees:
            entry = dict(invitee)
            identity = dict(entry["identity"])
            for key, member in identity.items():
                if isinstance(member, dict) and key in ("user", "application"):
                    identity[key] = {
                        **member,
                        "tenantId": member.get("tenantId") or call.tenant_id,
                    }
            entry["identity"] = identity
            entry.setdefault(
                "@odata.type", "#microsoft.graph.invitationParticipantInfo"
            )
            echoed.append(entry)
        # Graph documents this status capitalised; clients compare case-insensitively.
        operation = new_operation(call, "inviteParticipantsOperation", body, "Running")
        operation.extra["participants"] = echoed
        engine.events.add(
            "graph", f"bot invites {len(echoed)} into call {call.id}", callId=call.id
        )
        engine.start(self._invite_flow(call, operation, echoed, str(replaces or "")))
        return operation

    async def _invite_flow(
        self,
        call: Call,
        operation: Operation,
        invitees: list[dict[str, Any]],
        replaces: str,
    ) -> None:
        engine = self.engine
        await engine.clock.sleep(engine.config.callee_answer_delay)
        if call.ended:
            return
        replaced = engine.calls.get(replaces) if replaces else None
        if replaces and replaced is None:
            operation.status = "failed"
            operation.result = result_info(
                404, 0, f"Replaced call '{replaces}' was not found."
            )
            engine.notify(notices.operation_finished(call, operation))
            return
        operation.status = "completed"
        operation.result = ri(OK)
        engine.notify(notices.operation_finished(call, operation))
        conversation = call.conversation
        if conversation.kind == "p2p":
            conversation.kind = "group"
        joined = [engine.add_participant(conversation, i["identity"]) for i in invitees]
        if not call.roster_started:
            engine.start_roster(call)
        if replaced is not None:
            # The peer leaves the old call once they are in the new one (§7.11).
            await engine.clock.sleep(engine.config.setup_delay)
            engine.end(replaced, ri(RESULT_REPLACED))
        engine.events.add(
            "call", f"{len(joined)} joined call {call.id} by invitation", callId=call.id
        )

    def hold_music(
        self, call: Call, participant_id: str, body: dict[str, Any], start: bool
    ) -> Operation:
        """``startHoldMusic`` / ``stopHoldMusic``: 202 + running, then completed."""
        validate.opt_obj(body.get("customPrompt"), "customPrompt")
        validate.client_context(body)
        require_established(call)
        participant = self._participant(call, participant_id)
        if participant.is_bot_leg:
            raise bad_request("The bot cannot put itself on hold.")
        if start:
            held = [
                p
                for p in call.conversation.participants.values()
                if p.on_hold and p is not participant
            ]
            if held:
                raise conflict(
                    "Another participant is already on hold; only one at a time."
                )
        kind = "startHoldMusicOperation" if start else "stopHoldMusicOperation"
        operation = new_operation(call, kind, body, "running")
        participant.on_hold = start
        self.engine.start(self._complete_later(call, operation))
        return operation

    async def _complete_later(self, call: Call, operation: Operation) -> None:
        await self.engine.clock.sleep(self.engine.config.media_seconds)
        if call.ended:
            return
        operation.status = "completed"
        operation.result = ri(OK)
        self.engine.notify(notices.operation_finished(call, operation))

    def screen_sharing_role(
        self, call: Call, body: dict[str, Any], roles: frozenset[str]
    ) -> None:
        """``POST .../changeScreenSharingRole``: 202, roster shows the bot's share stream."""
        role = validate.text(body.get("role"), "role", required=True) or ""
        if role.lower() not in ("viewer", "sharer"):
            raise bad_request("'role' must be viewer or sharer.")
        self.engine.require(roles, "Calls.AccessMedia.All")
        require_established(call)
        require_group(call, "changeScreenSharingRole")
        if not call.app_hosted:
            # Application-hosted media group calls only (contract §6.14); an
            # invalid combination is a 400 (§11.1).
            raise bad_request(
                "changeScreenSharingRole needs a call with appHostedMediaConfig."
            )
        participant = self._participant(call, call.my_participant_id)
        participant.sharing = role.lower() == "sharer"
        self.engine.roster_changed(call.conversation, [participant], [])

    def recording_status(
        self, call: Call, body: dict[str, Any], roles: frozenset[str]
    ) -> Operation:
        """``POST .../updateRecordingStatus``: completed at once, no notification."""
        status = validate.text(body.get("status"), "status", required=True) or ""
        if status not in ("notRecording", "recording", "failed"):
            raise bad_request("'status' must be notRecording, recording or failed.")
        validate.client_context(body)
        self.engine.require(roles, "Calls.AccessMedia.All")
        require_established(call)
        participant = self._participant(call, call.my_participant_id)
        participant.recording_status = status
        participant.touch()
        return new_operation(call, "updateRecordingStatusOperation", body, "completed")
