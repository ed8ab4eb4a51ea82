"""Placing and receiving calls, meeting joins, and what the humans do.

Graph side: ``POST /communications/calls`` for the three shapes of contract §6.2
(peer-to-peer to a user or phone, ad-hoc group call, meeting join by chatInfo +
organizerMeetingInfo, joinMeetingIdMeetingInfo or tokenMeetingInfo). Human side (control
API and scenarios): ringing the bot, inviting it to a meeting, joining and leaving,
muting, sharing, hanging up and escalating a peer-to-peer call.

Emulator choices where the contract is silent (also in docs/emulator.md):
* A user who adds a third person to a peer-to-peer call with a bot lacking
  group-call permission drops the bot (Microsoft's calling docs: "If escalation is
  initiated by another participant and the bot does not have join-group-call
  permission, your bot is dropped from the call"): ``deleted`` with 403/7504 "Call
  was escalated to a group call and the application lacks Calls.JoinGroupCall.All".
  A bot holding ``Calls.JoinGroupCall.All`` (or ``...AsGuest.All``) stays: a call
  ``updated`` carrying the new ``chatInfo``, then rosters. (Inviting someone itself,
  the bot escalates with ``Calls.InitiateGroupCall.All``, checked by ``invite``.)
* Joining an unknown ``joinMeetingId`` or ``tokenMeetingInfo`` answers 201 and then ends
  the call with 480/10134 "Could not route the call", as Graph reports routing failures
  asynchronously (§6.2).
"""

from __future__ import annotations

from typing import Any

from callbot.simulator import notices, validate
from callbot.simulator.engine import (
    RESULT_ALL_LEFT,
    RESULT_NOT_ROUTED,
    RESULT_PEER_HANGUP,
    RESULT_REMOVED,
    Engine,
    invitation_info,
    participant_info,
    ri,
)
from callbot.simulator.errors import bad_request, not_found
from callbot.simulator.meetings import MeetingBook
from callbot.simulator.model import (
    Call,
    Conversation,
    Meeting,
    new_id,
    odata,
    result_info,
)

RESULT_ESCALATION_DROP = (
    403,
    7504,
    "Call was escalated to a group call and the application lacks Calls.JoinGroupCall.All.",
)
# Either keeps a bot in a call a participant escalates (contract §1.3).
STAY_IN_GROUP_CALL = ("Calls.JoinGroupCall.All", "Calls.JoinGroupCallAsGuest.All")


class Calling:
    """Call creation, incoming calls and human actions, on top of the engine."""

    def __init__(self, engine: Engine, meetings: MeetingBook) -> None:
        self.engine = engine
        self.meetings = meetings

    # --- Graph: create call ----------------------------------------------------------
    def create_call(self, body: dict[str, Any], roles: frozenset[str]) -> Call:
        """``POST /communications/calls``: validate, create the leg, start ringing.

        Raises ``GraphError`` 400 for a bad body and 403 for a missing permission.
        """
        engine = self.engine
        callback = validate.callback_uri(body.get("callbackUri"), required=True) or ""
        media = validate.media_config(body.get("mediaConfig"))
        modalities = validate.modalities(
            body.get("requestedModalities"), "requestedModalities"
        )
        targets = validate.array(body.get("targets"), "targets", required=False)
        for index, target in enumerate(targets):
            validate.invitation(target, f"targets[{index}]")
        chat_info = validate.opt_obj(body.get("chatInfo"), "chatInfo")
        meeting_info = validate.opt_obj(body.get("meetingInfo"), "meetingInfo")
        options = validate.opt_obj(body.get("callOptions"), "callOptions")
        source = validate.opt_obj(body.get("source"), "source")
        tenant = validate.text(body.get("tenantId"), "tenantId")
        subject = validate.text(body.get("subject"), "subject")
        bot_source = participant_info(engine.bot_identity())
        if source is not None:
            identity = validate.obj(source.get("identity"), "source.identity")
            bot_source = participant_info(identity)
        meeting: Meeting | None = None
        routable = True
        if chat_info is not None or meeting_info is not None:
            engine.require(
                roles, "Calls.JoinGroupCall.All", "Calls.JoinGroupCallAsGuest.All"
            )
            meeting, routable, chat_info, meeting_info = self._resolve_meeting(
                chat_info, meeting_info
            )
            kind = "meeting"
        elif len(targets) == 1:
            engine.require(roles, "Calls.Initiate.All")
            identity = targets[0]["identity"]
            if "phone" in identity and "applicationInstance" not in (source or {}).get(
                "identity", {}
            ):
                raise bad_request(
                    "Calling a phone number needs 'source.identity.applicationInstance' "
                    "(an application instance linked to the bot)."
                )
            kind = "p2p"
        elif len(targets) >= 2:
            engine.require(roles, "Calls.InitiateGroupCall.All")
            if len(targets) > 5:
                raise bad_request("A group call can be created with at most 5 targets.")
            kind = "group"
        else:
            raise bad_request(
                "'targets' is required unless joining a meeting (chatInfo/meetingInfo)."
            )

        if meeting is not None:
            conversation = self._meeting_conversation(meeting)
        else:
            conversation = Conversation(new_id(), kind, new_id())  # type: ignore[arg-type]
        call = engine.new_call(
            conversation,
            "outgoing",
            "establishing",
            callback,
            bot_source,
            [dict(t) for t in targets],
            modalities,
            tenant,
        )
        call.media_config = media
        call.chat_info = chat_info
        call.meeting_info = meeting_info
        call.subject = subject
        call.call_options = options
        call.delta_roster = bool(options and options.get("isDeltaRosterEnabled"))
        engine.events.add(
            "graph", f"bot placed a {kind} call {call.id}", callId=call.id
        )
        if not routable:
            engine.notify(notices.call_updated(call))
            engine.start(self._fail_later(call))
            return call
        delay = (
            engine.config.setup_delay
            if kind == "meeting"
            else engine.config.callee_answer_delay
        )
        engine.establish_later(call, delay, [t["identity"] for t in targets])
        return call

    async def _fail_later(self, call: Call) -> None:
        await self.engine.clock.sleep(self.engine.config.setup_delay)
        self.engine.end(call, ri(RESULT_NOT_ROUTED))

    def _resolve_meeting(
        self, chat_info: dict[str, Any] | None, meeting_info: dict[str, Any] | None
    ) -> tuple[Meeting | None, bool, dict[str, Any] | None, dict[str, Any] | None]:
        """Find the meeting a join names; returns (meeting, routable, chatInfo, meetingInfo)."""
        if meeting_info is None:
            raise bad_request("'meetingInfo' is required to join a meeting.")
        kind = str(meeting_info.get("@odata.type", "")).lower()
        if kind.endswith("joinmeetingidmeetinginfo"):
            join_id = validate.text(
                meeting_info.get("joinMeetingId"),
                "meetingInfo.joinMeetingId",
                required=True,
            )
            meeting = self.meetings.by_join_id(join_id or "")
            if meeting is None or (
                meeting.passcode and meeting.passcode != meeting_info.get("passcode")
            ):
                return None, False, chat_info, meeting_info
            return meeting, True, meeting.chat_info(), meeting_info
        if kind.endswith("tokenmeetinginfo"):
            token = validate.text(
                meeting_info.get("token"), "meetingInfo.token", required=True
            )
            meeting = self.meetings.tokens.get(token or "")
            if meeting is None:
                return None, False, chat_info, meeting_info
            return meeting, True, chat_info or meeting.chat_info(), meeting_info
        if kind.endswith("organizermeetinginfo"):
            if chat_info is None:
                raise bad_request("'chatInfo' is required with organizerMeetingInfo.")
            thread_id = (
                validate.text(
                    chat_info.get("threadId"), "chatInfo.threadId", required=True
                )
                or ""
            )
            organizer = validate.obj(
                meeting_info.get("organizer"), "meetingInfo.organizer"
            )
            user = validate.sub(organizer, "user")
            meeting = self.meetings.by_thread(thread_id)
            if meeting is None:
                meeting = self.meetings.create(
                    str(user.get("id") or new_id()),
                    str(user.get("displayName") or "Organizer"),
                    thread_id=thread_id,
                )
            echoed = dict(chat_info)
            echoed.setdefault("replyChainMessageId", None)
            return meeting, True, echoed, meeting_info
        raise bad_request(
            "'meetingInfo' must be organizerMeetingInfo, joinMeetingIdMeetingInfo or tokenMeetingInfo."
        )

    def _meeting_conversation(self, meeting: Meeting) -> Conversation:
        if meeting.conversation is None:
            meeting.conversation = Conversation(
                new_id(),
                "meeting",
                new_id(),
                chat_info=meeting.chat_info(),
                meeting_id=meeting.id,
            )
        return meeting.conversation

    # --- humans: calling the bot -------------------------------------------------------
    def ring_bot(self, caller: dict[str, Any], callback: str | None = None) -> Call:
        """A user or phone number calls the bot: a ``created`` to the bot's webhook."""
        engine = self.engine
        conversation = Conversation(new_id(), "p2p", new_id())
        to_instance = "phone" in caller
        bot_target = invitation_info(engine.bot_identity(instance=to_instance))
        call = engine.new_call(
            conversation,
            "incoming",
            "incoming",
            callback or engine.config.bot.webhook,
            participant_info(caller),
            [bot_target],
            ["audio"],
        )
        peer = engine.add_participant(conversation, caller)
        call.peer_id = peer.id
        engine.notify(notices.call_created(call))
        engine.arm_answer_timeout(call)
        engine.events.add(
            "human",
            f"{peer.display_name} calls the bot: call {call.id}",
            callId=call.id,
        )
        return call

    def invite_bot(
        self, meeting: Meeting, inviter: dict[str, Any] | None = None
    ) -> Call:
        """Somebody invites the bot into a meeting: an incoming group-call invite."""
        engine = self.engine
        conversation = self._meeting_conversation(meeting)
        call = engine.new_call(
            conversation,
            "incoming",
            "incoming",
            engine.config.bot.webhook,
            participant_info(inviter or meeting.organizer_identity()),
            [invitation_info(engine.bot_identity())],
            ["audio"],
        )
        call.chat_info = meeting.chat_info()
        call.meeting_info = meeting.organizer_meeting_info()
        call.subject = meeting.subject
        engine.notify(notices.call_created(call))
        engine.arm_answer_timeout(call)
        engine.events.add(
            "human",
            f"bot invited to meeting '{meeting.subject}': call {call.id}",
            callId=call.id,
        )
        return call

    # --- humans: in a call ----------------------------------------------------------
    def conversation_of(
        self, call_id: str | None = None, meeting_id: str | None = None
    ) -> Conversation:
        """The conversation behind a live call or a meeting (creating a meeting's)."""
        if meeting_id is not None:
            meeting = self.meetings.by_id.get(meeting_id)
            if meeting is None:
                raise not_found(f"Meeting '{meeting_id}'")
            return self._meeting_conversation(meeting)
        return self.engine.live_call(call_id or "").conversation

    def join(
        self, conversation: Conversation, identity: dict[str, Any], muted: bool = False
    ) -> str:
        """A person joins; every established bot leg gets a roster update."""
        if conversation.kind == "p2p":
            raise bad_request(
                "A peer-to-peer call takes no more people; escalate it instead."
            )
        participant = self.engine.add_participant(conversation, identity, muted=muted)
        self.engine.events.add(
            "human", f"{participant.display_name} joined", participantId=participant.id
        )
        return participant.id

    def leave(self, conversation: Conversation, participant_id: str) -> None:
        """A person leaves (hangs up). In a peer-to-peer call that ends the bot's leg."""
        participant = conversation.participants.get(participant_id)
        if participant is None or participant.is_bot_leg:
            raise not_found(f"Participant '{participant_id}'")
        if conversation.kind == "p2p":
            for call_id in list(conversation.call_ids):
                self.engine.end(self.engine.live_call(call_id), ri(RESULT_PEER_HANGUP))
            return
        self.engine.remove_participant(conversation, participant_id, "left")
        self.engine.events.add(
            "human", f"{participant.display_name} left", participantId=participant_id
        )
        if conversation.kind == "group" and not conversation.humans():
            for call_id in list(conversation.call_ids):
                self.engine.end(self.engine.live_call(call_id), ri(RESULT_ALL_LEFT))

    def set_state(
        self,
        conversation: Conversation,
        participant_id: str,
        muted: bool | None = None,
        sharing: bool | None = None,
    ) -> None:
        """A person mutes/unmutes themselves or starts/stops sharing their screen."""
        participant = conversation.participants.get(participant_id)
        if participant is None:
            raise not_found(f"Participant '{participant_id}'")
        if muted is not None:
            participant.muted = muted
        if sharing is not None:
            participant.sharing = sharing
        self.engine.roster_changed(conversation, [participant], [])

    def hang_up_remote(self, call: Call, result: dict[str, Any] | None) -> None:
        """The far end ends the bot's leg with ``result`` (default by call kind)."""
        if result is None:
            result = ri(RESULT_PEER_HANGUP if call.kind == "p2p" else RESULT_REMOVED)
        else:
            result = result_info(
                int(result.get("code", 200)),
                int(result.get("subcode", result.get("subCode", 0))),
                str(result.get("message", "")),
            )
        self.engine.end(call, result)

    def escalate(self, call: Call, newcomer: dict[str, Any]) -> str | None:
        """The peer of a peer-to-peer call adds ``newcomer`` (contract §7.11).

        Returns the newcomer's participant id. See the module docstring for what a
        bot without ``Calls.JoinGroupCall.All`` gets.
        """
        engine = self.engine
        if call.kind != "p2p" or call.state != "established":
            raise bad_request("Only an established peer-to-peer call can be escalated.")
        conversation = call.conversation
        conversation.kind = "group"
        conversation.chat_info = odata(
            "chatInfo",
            threadId=f"19:{new_id().replace('-', '')}@thread.v2",
            messageId="0",
            replyChainMessageId=None,
        )
        if not set(STAY_IN_GROUP_CALL) & set(engine.config.bot.permissions):
            engine.events.add(
                "call",
                f"call {call.id} escalated; bot lacks group-call permission",
                callId=call.id,
            )
            engine.end(call, ri(RESULT_ESCALATION_DROP))
            participant = engine.add_participant(conversation, newcomer)
            return participant.id
        call.chat_info = conversation.chat_info
        engine.notify(notices.call_updated(call, chatInfo=call.chat_info))
        participant = engine.add_participant(conversation, newcomer)
        engine.start_roster(call)
        engine.events.add(
            "human", f"call {call.id} escalated to a group call", callId=call.id
        )
        return participant.id
