"""The dashboard in headless Chromium, against Callbot under daphne and the emulator.

A supervisor watches a call appear and mutes someone; an auditor finds no controls
and a forged socket action is refused and audited; a dropped socket reconnects and
catches up. Screenshots go to the test-artifacts directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.browser


def board_row(page: Any, subject: str) -> Any:
    return page.locator("#board-rows tr", has_text=subject)


def test_a_supervisor_watches_a_call_appear_and_mutes_a_participant(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    page = open_page("bob")
    meeting = start_meeting("Incident bridge", ["Ana Lopez", "Lee Chen"])

    row = board_row(page, "Incident bridge")
    row.locator("[data-col=people]", has_text="2").wait_for()
    assert row.locator("[data-col=kind]").inner_text() == "Meeting"
    page.screenshot(path=artifacts / "board-supervisor.png")

    row.get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    ana = page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}']"
    )
    # The row is drawn before its state attributes are filled in.
    ana.and_(page.locator("[data-muted]")).wait_for()
    assert ana.get_attribute("data-muted") == "false"
    assert page.get_by_text(
        "Teams does not let a bot unmute someone else; ask them to unmute themselves."
    ).is_visible()

    ana.get_by_role("button", name="Mute").click()

    # The mute comes back from the emulator as a roster notification.
    page.wait_for_selector(
        f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}'][data-muted=true]"
    )
    page.locator("#f-muted", has_text="1").wait_for()
    page.locator(
        "#timeline li[data-status=completed]", has_text="Mute Participant → Ana Lopez"
    ).wait_for()
    assert ana.get_by_role("button", name="Muted").is_disabled()
    page.screenshot(path=artifacts / "call-supervisor.png", full_page=True)
    assert page.errors == []


def test_a_failed_action_shows_graphs_reason_in_words(
    open_page: Any, start_meeting: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    meeting = start_meeting("Stale roster", ["Kim Park", "Noor Aziz"])
    board_row(page, "Stale roster").get_by_role("link").click()
    kim_id = meeting.people["Kim Park"]
    kim = page.locator(f"#roster-rows [data-participant-id='{kim_id}']")
    kim.wait_for()
    page.locator("#roster-count", has_text="3").wait_for()
    emulator.wait_idle()  # nothing else in flight: the next notification is Kim's
    # Kim leaves, and the notification saying so is lost: Callbot still lists her.
    emulator.control("POST", "/faults", {"notify_drop": {"count": 1}})
    emulator.control("DELETE", f"/meetings/{meeting.id}/participants/{kim_id}")
    emulator.wait_idle()

    kim.get_by_role("button", name="Mute").click()

    failed = page.locator(
        "#timeline li[data-status=failed]", has_text="Mute Participant → Kim Park"
    )
    failed.wait_for()
    assert "Teams no longer knows this call or participant" in failed.text_content()
    assert "failed" in page.locator("#action-feedback").inner_text()
    page.screenshot(path=artifacts / "call-failed-action.png")


def test_a_refused_participant_action_does_not_leave_its_row_pending(
    open_page: Any, start_meeting: Any
) -> None:
    # The server refuses what it cannot take (its database down, say): the row
    # said "pending" since the click, and nothing else would ever settle it.
    refusal = "Callbot could not take this request because of a fault on the server."

    def refuse_actions(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") != "action":
                server.send(message)
                return
            answer = {"type": "action.refused", "request_id": frame["request_id"]}
            ws.send(json.dumps({**answer, "code": "unavailable", "message": refusal}))

        ws.on_message(from_page)

    page = open_page("bob")
    meeting = start_meeting("Refused here", ["Ana Lopez", "Lee Chen"])
    page.route_web_socket("**/ws/live/", refuse_actions)
    board_row(page, "Refused here").get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    ana = page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}']"
    )
    ana.and_(page.locator("[data-muted]")).wait_for()

    ana.get_by_role("button", name="Mute").click()

    page.locator("#action-feedback", has_text=refusal).wait_for()
    status = ana.locator(".row-status")
    assert status.get_attribute("data-status") == "refused"
    assert status.text_content() == f"refused: {refusal}"
    assert ana.get_by_role("button", name="Mute").is_enabled()


def test_an_auditor_has_no_controls_and_a_forged_action_is_refused(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    meeting = start_meeting("Audit me", ["Sam Ortiz"])
    page = open_page("carol")
    board_row(page, "Audit me").get_by_role("link").click()
    page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Sam Ortiz']}']"
    ).wait_for()
    assert page.locator("[data-act]").count() == 0
    assert page.locator("#controls").count() == 0
    call_id = int(page.locator("#call").get_attribute("data-call-id"))

    answer = page.evaluate(
        """async ([callId, participant]) => {
            const ws = new WebSocket(`ws://${location.host}/ws/live/`);
            const messages = [];
            await new Promise((resolve) => { ws.onopen = resolve; });
            const refused = new Promise((resolve) => {
                ws.onmessage = (e) => {
                    const m = JSON.parse(e.data);
                    if (m.type === "action.refused") resolve(m);
                };
            });
            ws.send(JSON.stringify({type: "action", request_id: "forged", call: callId,
                                    kind: "mute_participant", participant}));
            const m = await refused;
            ws.close();
            return m;
        }""",
        [call_id, meeting.people["Sam Ortiz"]],
    )

    assert answer["request_id"] == "forged"
    assert answer["code"] == "forbidden"
    # The refusal is in the call's audit trail, which every role can read.
    page.reload()
    page.wait_for_selector("body[data-live=connected]")
    entry = page.locator("#timeline li.t-audit", has_text="carol: mute_participant")
    entry.wait_for()
    assert entry.locator(".status").text_content() == "refused"
    page.screenshot(path=artifacts / "call-auditor.png")


def test_a_dropped_socket_reconnects_and_catches_up(
    open_page: Any,
    start_meeting: Any,
    emulator: RunningEmulator,
    server: CallbotServer,
    artifacts: Path,
) -> None:
    meeting = start_meeting("Reconnect drill", ["Rui Costa"])
    page = open_page("bob")
    row = board_row(page, "Reconnect drill")
    row.locator("[data-col=people]", has_text="1").wait_for()

    server.stop()
    page.wait_for_selector("body[data-live=reconnecting]")
    assert page.locator("#reconnecting").is_visible()
    page.screenshot(path=artifacts / "board-reconnecting.png")

    server.start()
    # A change while the page is still away: it arrives by snapshot or by delta.
    for name in ("Mia Wong", "Omar Said"):
        emulator.control(
            "POST",
            f"/meetings/{meeting.id}/participants",
            {"user": {"displayName": name}},
        )
    emulator.wait_idle(timeout=15)

    page.wait_for_selector("body[data-live=connected]", timeout=30_000)
    row.locator("[data-col=people]", has_text="3").wait_for()
    assert page.locator("#reconnecting").is_hidden()


def test_the_board_and_a_call_are_reachable_by_keyboard(
    open_page: Any, start_meeting: Any
) -> None:
    start_meeting("Keyboard check", ["Ivo Petrov"])
    page = open_page("bob")
    board_row(page, "Keyboard check").wait_for()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Keyboard check":
            break
    else:
        pytest.fail("no board link took the focus")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-live=connected] #roster-rows [role=row]")
    page.focus("#roster-filter")
    page.keyboard.type("Ivo")
    assert page.locator("#roster-rows [role=row]:visible").count() == 1
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Mute"


def test_a_supervisor_puts_someone_on_hold_and_takes_them_off(
    open_page: Any, start_meeting: Any
) -> None:
    meeting = start_meeting("Hold line", ["Eli Stone"])
    page = open_page("bob")
    board_row(page, "Hold line").get_by_role("link").click()
    eli = page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Eli Stone']}']"
    )
    eli.wait_for()

    eli.get_by_role("button", name="Hold", exact=True).click()
    page.locator(
        "#timeline li[data-status=completed]", has_text="Start Hold Music → Eli Stone"
    ).wait_for()
    eli.get_by_role("button", name="Unhold").click()
    page.locator(
        "#timeline li[data-status=completed]", has_text="Stop Hold Music → Eli Stone"
    ).wait_for()
    eli.get_by_role("button", name="Hold", exact=True).wait_for()


def test_every_call_control_reaches_teams_and_shows_its_outcome(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    start_meeting("Control panel", ["Ada Byrne", "Ben Cruz"])
    page = open_page("bob")
    board_row(page, "Control panel").get_by_role("link").click()
    page.locator("#roster-count", has_text="3").wait_for()  # the bot, Ada and Ben
    controls = page.locator("#controls")

    def done(label: str) -> None:
        page.locator(
            "#timeline li[data-status=completed]", has_text=label
        ).first.wait_for()

    controls.get_by_role("button", name="Mute everyone except presenters").click()
    done("Mute Participant → Ada Byrne")
    done("Mute Participant → Ben Cruz")
    page.locator("#f-muted", has_text="2").wait_for()

    controls.get_by_role("button", name="Mute the bot").click()
    done("Mute Bot")
    page.locator("#f-bot", has_text="muted").wait_for()
    controls.get_by_role("button", name="Unmute the bot").click()
    done("Unmute Bot")

    controls.get_by_role("button", name="Play prompt").click()
    done("Play Prompt")

    controls.get_by_label("Azure AD object id or phone number").fill("+14255550199")
    controls.get_by_role("button", name="Invite").click()
    done("Invite → +14255550199")

    # The meeting's media is hosted by Teams: no screen-sharing role (§6.14).
    assert controls.get_by_role("button", name="Change role").is_disabled()

    controls.get_by_label("Recording status").select_option("recording")
    controls.get_by_role("button", name="Set status").click()
    done("Update Recording Status → recording")
    page.screenshot(path=artifacts / "call-controls.png", full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    controls.get_by_role("button", name="Hang up").click()
    page.locator("#f-state", has_text="terminated").wait_for()
    # Nothing is left to do: the controls give way to one line saying so.
    page.locator("#controls-ended").wait_for()
    assert controls.is_hidden()


def test_signing_out_in_another_tab_sends_the_board_to_the_sign_in_page(
    open_page: Any, server: CallbotServer
) -> None:
    board = open_page("bob")
    other = board.context.new_page()
    other.goto(f"{server.url}/meetings/")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url("**/accounts/login/")

    board.wait_for_url(lambda url: "/accounts/login/?next=" in url)
    assert board.locator("#id_username").is_visible()


def test_no_page_breaks_the_content_security_policy(
    open_page: Any, start_meeting: Any, server: CallbotServer, artifacts: Path
) -> None:
    page = open_page("root")  # the sign-in page and the board, watched already
    start_meeting("Policy walk", ["Ana Lopez"])
    board_row(page, "Policy walk").get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    page.locator("#roster-count", has_text="2").wait_for()
    for path in (
        "/meetings/",
        "/settings/",
        "/reports/",
        "/admin/",
        "/admin/ivr/ivrflow/add/",
        "/admin/django_celery_beat/periodictask/add/",
    ):
        response = page.goto(f"{server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
    page.screenshot(path=artifacts / "admin-periodic-task-csp.png", full_page=True)
    violations = page.context.csp_violations
    assert violations == []
    assert page.errors == []

    # The watch hears a violation, and the policy blocks inline script.
    with page.context.expect_console_message(lambda m: "CSP violation" in m.text):
        page.evaluate(
            """() => {
              const script = document.createElement("script");
              script.textContent = "window.inlineRan = true";
              document.body.append(script);
            }"""
        )
    assert page.evaluate("() => window.inlineRan === undefined")
    assert any("script-src" in v for v in violations), violations
    violations.clear()
