// One call: header facts, the roster (incremental, fit for 1,000 people), the
// timeline, and the supervisor's controls with pending → outcome feedback.

import { RingingPanel, takeButton, waitLimitText, waitingText } from "./ringing.js";
import { DeltaOrder, LiveSocket, KIND_LABELS, SnapshotParts, clockTime, duration, el, frameBatcher, serverNow, stateLabel, syncClock } from "./live.js";
import { applyOffers, pruneReasons, setReasons } from "./offered.js";
import { setupTransfer } from "./transfer.js";

const root = document.getElementById("call");
const callId = Number(root.dataset.callId);
const canAct = document.body.dataset.canAct === "true";
const rosterBody = document.getElementById("roster-rows");
const rosterCount = document.getElementById("roster-count");
const filterInput = document.getElementById("roster-filter");
const timelineList = document.getElementById("timeline");
const feedback = document.getElementById("action-feedback");
const controls = document.getElementById("controls");
const controlsEnded = document.getElementById("controls-ended");
const reasonLists = [...document.querySelectorAll("[data-reasons-list]")];
const droppedNote = document.getElementById("call-dropped");
const TIMELINE_MAX = 500;

// Each action kind's words, from the server's hello (the labels its timeline uses),
// so a snapshot's timeline and the live entries read alike.
let labels = {};

function labelOf(kind) {
  return labels[kind] || kind;
}

let version = -1;
let call = {};
const people = new Map(); // participant id -> {data, tr, cells}
const actions = new Map(); // action id -> shape
const dirtyPeople = new Set();
let headerDirty = true;
const flush = frameBatcher(render);

// --- roster ------------------------------------------------------------------------

// Rows are divs with ARIA table roles rather than <tr>: CSS content-visibility skips
// layout and paint of the rows out of view, which a table row cannot do.
function participantRow(p) {
  const tr = el("div", { role: "row", class: "rrow", dataset: { participantId: p.id } });
  for (const col of ["name", "identity", "role", "mic", "lobby", "sharing", "joined"]) {
    tr.append(el("span", { role: "cell", dataset: { col } }));
  }
  if (canAct) {
    const td = el("span", { role: "cell", dataset: { col: "actions" } });
    const box = el("div", { class: "row-actions" });
    td.append(box);
    box.append(
      el("button", { type: "button", dataset: { act: "mute_participant", kind: "mute_participant" } }, "Mute"),
      el("button", { type: "button", dataset: { act: "start_hold_music", kind: "start_hold_music" } }, "Hold"),
      el("button", { type: "button", class: "danger", dataset: { act: "remove_participant", kind: "remove_participant", confirm: "Remove this person from the call?" } }, "Remove"),
      el("span", { class: "row-status", role: "status" }),
    );
    tr.append(td);
  }
  const entry = { data: p, tr, cells: Object.fromEntries([...tr.children].map((td) => [td.dataset.col, td])) };
  return entry;
}

function paintParticipant(entry) {
  const p = entry.data;
  const c = entry.cells;
  const tr = entry.tr;
  tr.dataset.muted = p.is_muted;
  tr.classList.toggle("bot", p.is_bot);
  c.name.textContent = p.is_bot ? `${p.name} (this bot)` : p.name;
  // Ids are long GUIDs: show the start, keep the whole in the tooltip.
  c.identity.textContent = p.identity_id ? `${p.kind} · ${p.identity_id.slice(0, 8)}…` : p.kind;
  c.identity.title = p.identity_id || "";
  c.role.textContent = p.role || "";
  c.mic.replaceChildren(el("span", { class: p.is_muted ? "mic off" : "mic on" }, p.is_muted ? "muted" : "open"));
  c.lobby.textContent = p.is_in_lobby ? "in lobby" : "";
  c.sharing.textContent = p.is_sharing_screen ? "sharing" : "";
  c.joined.textContent = clockTime(p.joined_at);
  if (c.actions) {
    applyOffers(tr, call.unavailable, labels); // before: hands back what is offered again
    const button = (kind) => c.actions.querySelector(`button[data-act="${kind}"]`);
    const mute = button("mute_participant");
    const hold = c.actions.querySelector("button[data-act$=hold_music]");
    const remove = button("remove_participant");
    const busy = pendingFor(p.id);
    mute.disabled = p.is_muted || p.is_bot || busy.has("mute_participant");
    mute.textContent = busy.has("mute_participant") ? "Muting…" : p.is_muted ? "Muted" : "Mute";
    const held = p.on_hold || heldByAction(p.id);
    hold.dataset.act = held ? "stop_hold_music" : "start_hold_music";
    hold.dataset.kind = hold.dataset.act;
    hold.textContent = held ? "Unhold" : "Hold";
    hold.disabled = p.is_bot || busy.has("start_hold_music") || busy.has("stop_hold_music");
    remove.disabled = p.is_bot || busy.has("remove_participant");
    c.actions.firstChild.classList.toggle("hidden-bot", p.is_bot);
    applyOffers(tr, call.unavailable, labels); // after: what is refused stays so
  }
  applyFilter(entry);
}

// The roster does not say who is on hold; the latest finished hold action does.
function heldByAction(participantId) {
  let latest = null;
  for (const a of actions.values()) {
    if (a.participant_id !== participantId || a.status !== "completed") continue;
    if (a.kind !== "start_hold_music" && a.kind !== "stop_hold_music") continue;
    if (!latest || a.id > latest.id) latest = a;
  }
  return latest?.kind === "start_hold_music";
}

function pendingFor(participantId) {
  const kinds = new Set();
  for (const a of actions.values()) {
    if (a.participant_id === participantId && (a.status === "queued" || a.status === "sent")) kinds.add(a.kind);
  }
  for (const r of requests.values()) if (r.participant === participantId) kinds.add(r.kind);
  return kinds;
}

function applyFilter(entry) {
  const q = filterInput.value.trim().toLowerCase();
  const p = entry.data;
  entry.tr.hidden = q !== "" && !`${p.name} ${p.identity_id} ${p.id}`.toLowerCase().includes(q);
}

// --- everyone so far ---------------------------------------------------------------
// The server renders the roster as it was, a page at a time; on its last page of a
// live call (``data-live-tail``) the same roster deltas add who joins and mark who
// leaves, as a reload would show them.
const everyone = document.getElementById("roster-history");

function identityLabel(kind) {
  const words = (kind || "unknown").replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function everyoneBody() {
  let body = everyone.querySelector("table.roster-was tbody");
  if (body) return body;
  body = el("tbody");
  const head = el("tr", {}, ...["Name", "Identity", "Joined", "Left", "Changes over time"].map((t) => el("th", { scope: "col" }, t)));
  const table = el("table", { class: "roster-was" }, el("thead", {}, head), body);
  document.getElementById("roster-history-empty")?.remove();
  everyone.querySelector("h2").after(el("div", { class: "scroll" }, table));
  return body;
}

function everyoneJoined(p) {
  if (!everyone || everyone.dataset.liveTail !== "true") return;
  if (everyone.querySelector(`tr[data-participant-id="${CSS.escape(p.id)}"]`)) return;
  const name = el("th", { scope: "row" }, p.name);
  if (p.is_bot) name.append(" ", el("span", { class: "tag bot" }, "this bot"));
  const joined = p.joined_at ? el("time", { datetime: p.joined_at }, clockTime(p.joined_at)) : "";
  const row = el(
    "tr",
    { class: p.is_bot ? "bot" : null, dataset: { participantId: p.id } },
    name,
    el("td", { title: p.identity_id || "" }, identityLabel(p.kind)),
    el("td", {}, joined),
    el("td", {}, el("span", { class: "present" }, "present")),
    el("td", {}, "–"),
  );
  everyoneBody().append(row);
  const count = document.getElementById("roster-history-count");
  // The count is there only where the server gave one (an ended call's summary).
  if (count && count.textContent.trim()) count.textContent = String(Number(count.textContent) + 1);
}

function everyoneLeft(id) {
  if (!everyone || everyone.dataset.liveTail !== "true") return;
  const row = everyone.querySelector(`tr[data-participant-id="${CSS.escape(id)}"]`);
  const left = row && row.children[3];
  if (!left || !left.querySelector(".present")) return;
  const at = new Date(serverNow()).toISOString();
  left.replaceChildren(el("time", { datetime: at }, clockTime(at)));
}

function upsertParticipant(p, { announce }) {
  let entry = people.get(p.id);
  if (!entry) {
    entry = participantRow(p);
    people.set(p.id, entry);
    rosterBody.append(entry.tr);
    if (announce) everyoneJoined(p);
    if (announce) addTimeline({ at: p.joined_at, source: "roster", text: `${p.name} joined` });
  } else if (announce) {
    const before = entry.data;
    const changes = [];
    if (before.is_muted !== p.is_muted) changes.push(p.is_muted ? "muted" : "unmuted");
    if (before.is_sharing_screen !== p.is_sharing_screen) changes.push(p.is_sharing_screen ? "started sharing" : "stopped sharing");
    if (before.is_in_lobby !== p.is_in_lobby) changes.push(p.is_in_lobby ? "waits in the lobby" : "left the lobby");
    if (before.on_hold !== p.on_hold) changes.push(p.on_hold ? "on hold" : "off hold");
    if (changes.length) addTimeline({ at: null, source: "roster", text: `${p.name} ${changes.join(", ")}` });
  }
  entry.data = p;
  dirtyPeople.add(p.id);
}

function removeParticipant(id, { announce }) {
  const entry = people.get(id);
  if (!entry) return;
  people.delete(id);
  entry.tr.remove();
  if (announce) everyoneLeft(id);
  if (announce) addTimeline({ at: null, source: "roster", text: `${entry.data.name} left` });
}

// --- header ------------------------------------------------------------------------

function setText(id, text) {
  const node = document.getElementById(id);
  if (node && node.textContent !== String(text)) node.textContent = text;
}

function paintHeader() {
  root.dataset.version = version;
  root.dataset.state = call.state;
  root.dataset.kind = call.kind;
  const escalates = document.getElementById("invite-escalates");
  if (escalates) escalates.hidden = call.kind !== "peer_to_peer";
  const state = document.getElementById("f-state");
  state.dataset.state = call.state;
  state.textContent = stateLabel(call.state);
  setText("call-title", call.subject || call.meeting_subject || call.caller || "Call");
  setText("f-kind", KIND_LABELS[call.kind] || call.kind);
  let humans = 0;
  let muted = 0;
  let botMuted = false;
  const sharing = [];
  for (const { data } of people.values()) {
    if (data.is_bot) {
      botMuted = data.is_muted;
      continue;
    }
    humans += 1;
    if (data.is_muted) muted += 1;
    if (data.is_sharing_screen) sharing.push(data.name);
  }
  setText("f-people", humans);
  setText("f-muted", muted);
  setText("f-sharing", sharing.join(", ") || "–");
  setText("f-bot", botMuted || call.bot_muted ? "muted" : "open");
  const pending = [...actions.values()].filter((a) => a.status === "queued" || a.status === "sent").length;
  setText("f-pending", pending);
  setText("f-result", call.result || "–");
  rosterCount.textContent = people.size;
  const mute = document.getElementById("btn-bot-mute");
  const unmute = document.getElementById("btn-bot-unmute");
  if (mute && unmute) {
    const bot = botMuted || call.bot_muted;
    mute.hidden = bot;
    unmute.hidden = !bot;
  }
  if (droppedNote) {
    droppedNote.textContent = call.dropped || "";
    droppedNote.hidden = !call.dropped;
  }
  if (canAct) {
    const ended = call.state === "terminated";
    // An ended call has nothing left to offer: one line instead of every control
    // disabled with the same reason.
    controls.hidden = ended;
    if (controlsEnded) controlsEnded.hidden = !ended;
    applyOffers(controls, call.unavailable, labels);
    for (const b of document.querySelectorAll("#controls button")) b.disabled = ended || b.dataset.busy === "true";
    applyOffers(controls, call.unavailable, labels);
  }
  tick();
}

function tick() {
  ringing.update({ ...call, id: callId });
  paintWaiting();
  paintUntaken();
  setText("f-duration", duration(call.established_at || call.created_at, call.terminated_at));
}

function render() {
  for (const id of dirtyPeople) {
    const entry = people.get(id);
    if (entry) paintParticipant(entry);
  }
  dirtyPeople.clear();
  if (headerDirty) paintHeader();
  headerDirty = false;
}

// What Graph allows on the call changed (a snapshot, or a peer-to-peer call that
// became a group call): every control is painted again.
function offersChanged() {
  for (const id of people.keys()) dirtyPeople.add(id);
  for (const list of reasonLists) pruneReasons(list, call.unavailable);
  headerDirty = true;
}

// --- timeline ----------------------------------------------------------------------

function timelineItem(entry) {
  const li = el("li", { class: `t-${entry.source}`, dataset: { status: entry.status || "" } });
  li.append(el("time", { datetime: entry.at || "" }, clockTime(entry.at || new Date().toISOString())), " ", el("span", { class: "src" }, entry.source), " ");
  // What the IVR or a call policy did is the bot's, never a person's.
  if (entry.by_bot) li.append(el("span", { class: "actor bot", title: "the bot: an IVR flow or a call policy" }, "callbot (bot)"), " ");
  else if (entry.source === "action" && entry.actor) li.append(el("span", { class: "actor" }, entry.actor), " ");
  li.append(entry.text);
  if (entry.status) li.append(" ", el("span", { class: "status", dataset: { status: entry.status } }, entry.status));
  return li;
}

function addTimeline(entry) {
  timelineList.prepend(timelineItem(entry));
  while (timelineList.childElementCount > TIMELINE_MAX) timelineList.lastElementChild.remove();
}

function describeAction(a) {
  let text = labelOf(a.kind);
  if (a.target) text += ` → ${a.target}`;
  return text;
}

// Other parts of the page (transfer.js) follow actions and the call's state.
function tell(name, detail) {
  document.dispatchEvent(new CustomEvent(`callbot:${name}`, { detail }));
}

function onAction(a, { announce }) {
  const before = actions.get(a.id);
  actions.set(a.id, a);
  tell("action", a);
  if (a.participant_id) dirtyPeople.add(a.participant_id);
  headerDirty = true;
  if (announce && (!before || before.status !== a.status)) {
    const text = a.status === "failed" ? `${describeAction(a)}: ${a.message || a.result_message || "failed"}` : describeAction(a);
    addTimeline({ at: a.completed_at || null, source: "action", text, status: a.status, by_bot: a.by_bot });
    // The feedback line speaks of this page's own requests; others' acts are on the
    // timeline and under "Recent acts", with who did them.
    if (mine.has(a.id)) showOutcome(a);
    else markRow(a);
  }
}

// --- snapshots and deltas -------------------------------------------------------------

let snapshots = 0;
// A call snapshot arrives in parts (roster and timeline sliced); deltas that come
// meanwhile wait for the whole.
const parts = new SnapshotParts(["actions", "participants", "timeline"]);
let held = [];

function onSnapshotPart(m) {
  if (m.call_id !== callId) return;
  const whole = parts.add(m);
  if (!whole) return;
  onSnapshot(whole);
  const waiting = held;
  held = [];
  for (const delta of waiting) onDelta(delta);
}

function onSnapshot(m) {
  // Counted on the page: a resync storm would show here (and tests look).
  root.dataset.snapshots = snapshots += 1;
  lastSnapshotAt = Date.now();
  syncClock(m.server_time);
  version = m.version;
  call = m.call;
  offersChanged();
  const before = new Map(actions);
  actions.clear();
  for (const a of [...m.actions].reverse()) {
    onAction(a, { announce: false });
    // An action of ours that finished while we were catching up still gets its say.
    if (mine.has(a.id) && before.get(a.id)?.status !== a.status) showOutcome(a);
  }
  const seen = new Set(m.participants.map((p) => p.id));
  for (const id of [...people.keys()]) if (!seen.has(id)) removeParticipant(id, { announce: false });
  const fragment = document.createDocumentFragment();
  for (const p of m.participants) {
    const known = people.get(p.id);
    if (known) {
      known.data = p;
      dirtyPeople.add(p.id);
    } else {
      const entry = participantRow(p);
      people.set(p.id, entry);
      fragment.append(entry.tr);
      dirtyPeople.add(p.id);
    }
  }
  rosterBody.append(fragment);
  timelineList.replaceChildren(...m.timeline.slice(-TIMELINE_MAX).reverse().map(timelineItem));
  order.afterSnapshot();
  headerDirty = true;
  flush();
  tell("call", call);
}

// Deltas in version order (live.js): one that skips ahead waits briefly for the one
// before it, then the page asks for a snapshot.
const order = new DeltaOrder({
  current: () => version, // -1 until the first snapshot: every delta waits for it
  apply: (_, m) => applyDelta(m),
  resync() {
    if (!parts.busy) socket.resync({ call: callId }); // one is on its way
  },
});

function onDelta(m) {
  if (m.call_id !== callId) return;
  if (parts.busy) held.push(m);
  else order.offer(callId, m);
}

function applyDelta(m) {
  version = m.version;
  if (m.call && Object.keys(m.call).length) {
    if (m.call.state && m.call.state !== call.state) {
      addTimeline({ at: null, source: "call", text: `state → ${stateLabel(m.call.state)}` });
    }
    call = { ...call, ...m.call };
    if ("unavailable" in m.call) offersChanged();
    if ("result_code" in m.call || "result_message" in m.call) {
      call.result = `${m.call.result_code ?? call.result_code ?? ""}/${m.call.result_subcode ?? 0} ${m.call.result_message ?? ""}`.trim();
    }
  }
  for (const p of m.participants) upsertParticipant(p, { announce: true });
  for (const id of m.left) removeParticipant(id, { announce: true });
  for (const a of m.actions) onAction(a, { announce: true });
  headerDirty = true;
  flush();
  if (m.call && m.call.state) tell("call", call);
}

// --- actions -------------------------------------------------------------------------

const requests = new Map(); // request_id -> {kind, participant}
const mine = new Set(); // ids of actions this page asked for

function say(text, tone) {
  if (!feedback) return;
  feedback.replaceChildren(el("span", { class: `say ${tone}` }, text));
}

function showOutcome(a) {
  const what = describeAction(a);
  if (a.status === "completed") say(`${what}: done.`, "ok");
  else if (a.status === "failed") say(`${what} failed: ${a.message || a.result_message || "Teams gave no reason."}`, "bad");
  else if (a.status === "sent") say(`${what}: sent to Teams, waiting for the outcome…`, "wait");
  else say(`${what}: pending…`, "wait");
  markRow(a);
}

// The participant's row shows where an action on them stands, whoever asked.
function markRow(a) {
  const row = a.participant_id && people.get(a.participant_id);
  if (row && row.cells.actions) {
    const status = row.cells.actions.querySelector(".row-status");
    status.dataset.status = a.status;
    status.textContent = a.status === "failed" ? `failed: ${a.message || a.result_message}` : a.status === "completed" ? "" : a.status;
    status.title = a.message || "";
  }
}

// An action of ours still queued this long says so when no worker has taken it
// (none runs, or the queue is backed up); the admins get a "No worker performing
// tasks" alert past their threshold. A worker's claim is not announced, so the
// page asks for a fresh snapshot before saying it, and again every UNTAKEN_CHECK_MS.
const UNTAKEN_NOTICE_S = 15;
const UNTAKEN_CHECK_MS = 30000;
const untakenAsked = new Map(); // action id -> when the page asked for a snapshot
let lastSnapshotAt = 0;

function queuedSeconds(a) {
  if (a.status !== "queued" || !a.created_at) return 0;
  return Math.floor((serverNow() - Date.parse(a.created_at)) / 1000);
}

function paintUntaken() {
  let newest = null;
  let ask = false;
  for (const id of mine) {
    const a = actions.get(id);
    if (!a || a.picked_up || queuedSeconds(a) < UNTAKEN_NOTICE_S) {
      if (untakenAsked.delete(id) && a) showOutcome(a); // a worker took it after all
      continue;
    }
    const asked = untakenAsked.get(id);
    if ((asked === undefined || Date.now() - asked > UNTAKEN_CHECK_MS) && !parts.busy) {
      untakenAsked.set(id, Date.now());
      ask = true;
    }
    if (asked === undefined || lastSnapshotAt < asked) continue; // not confirmed yet
    if (!newest || a.id > newest.id) newest = a;
    const row = a.participant_id && people.get(a.participant_id);
    const status = row && row.cells.actions && row.cells.actions.querySelector(".row-status");
    if (status) {
      status.dataset.status = "untaken";
      status.textContent = `queued ${queuedSeconds(a)} s: no worker has picked it up yet`;
      status.title = "No Celery worker has taken this action from the queue.";
    }
  }
  if (ask) socket.resync({ call: callId }); // one snapshot answers for them all
  if (newest) say(`${describeAction(newest)}: queued ${queuedSeconds(newest)} s: no worker has picked it up yet.`, "wait");
}

function act(kind, { participant = "", params = {}, button = null, onAnswer = null } = {}) {
  const request = { kind, participant };
  const label = labelOf(kind);
  if (button) {
    button.dataset.busy = "true";
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  const requestId = socket.act({ call: callId, kind, participant, params }, (answer) => {
    requests.delete(answer.request_id);
    if (button) {
      button.dataset.busy = "false";
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
    if (answer.type === "action.refused") {
      say(`${label}: ${answer.message}`, "bad");
      // A refusal is no event of the call (the audit trail keeps the server's); one
      // the page made itself, disconnected, never reached the server at all.

      // The row said "pending" since the click; no action will ever settle it.
      const row = participant && people.get(participant);
      if (row && row.cells.actions) {
        const status = row.cells.actions.querySelector(".row-status");
        status.dataset.status = "refused";
        status.textContent = `refused: ${answer.message}`;
        status.title = answer.message;
      }
    } else if (answer.actions.length === 0) {
      say(`${label}: nothing to do.`, "ok");
    } else {
      for (const a of answer.actions) {
        mine.add(a.id);
        if (!actions.has(a.id)) onAction(a, { announce: true });
        else showOutcome(actions.get(a.id)); // its delta came before this answer
      }
    }
    if (participant) dirtyPeople.add(participant);
    headerDirty = true;
    flush();
    if (onAnswer) onAnswer(answer);
  });
  if (requestId === null) return;
  requests.set(requestId, request);
  say(`${label}: pending…`, "wait");
  if (participant) {
    dirtyPeople.add(participant);
    const row = people.get(participant);
    if (row && row.cells.actions) {
      const status = row.cells.actions.querySelector(".row-status");
      status.dataset.status = "pending";
      status.textContent = "pending";
    }
  }
  flush();
}

if (canAct) {
  rosterBody.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const tr = button.closest("[data-participant-id]");
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    act(button.dataset.act, { participant: tr.dataset.participantId, button });
  });
  for (const button of document.querySelectorAll("#controls > div.control-row > button[data-act]")) {
    button.addEventListener("click", () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      act(button.dataset.act, { button });
    });
  }
  for (const form of document.querySelectorAll("#controls form[data-act]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const kind = event.submitter?.dataset.act || form.dataset.act;
      const data = Object.fromEntries(new FormData(form));
      let params = {};
      if (kind === "invite") {
        const raw = data.target.trim();
        const target = raw.startsWith("+") || /^[\d\s().-]+$/.test(raw) ? { phone: raw } : { user_id: raw };
        if (data.display_name) target.display_name = data.display_name;
        params = { target };
      } else if (kind === "play_prompt") params = { uri: data.uri };
      else if (kind === "change_screen_sharing_role") params = { role: data.role };
      else if (kind === "update_recording_status") params = { status: data.status };
      act(kind, { params, button: event.submitter });
    });
  }
}

// Why a phone number cannot be reached ("" when it can), from the hello.
let phoneRefused = "";

// The invite field asks for a phone number only when one can be reached; when not,
// it says why before anyone types one (the server refuses it all the same).
function offerPhoneInvites() {
  const field = document.querySelector("#invite-form input[name=target]");
  if (!field) return;
  field.placeholder = phoneRefused ? "Azure AD object id" : "Azure AD object id or +phone";
  field.title = phoneRefused;
}

if (canAct) {
  setupTransfer({
    callId,
    act,
    call: () => call,
    roster: () => [...people.values()].map((entry) => entry.data),
    phoneRefused: () => phoneRefused,
  });
}

filterInput.addEventListener("input", () => {
  for (const entry of people.values()) applyFilter(entry);
});

const socket = new LiveSocket({
  subscriptions: [{ call: callId }],
  onMessage(message) {
    if (message.type === "hello") {
      labels = message.labels || {};
      setReasons(message.reasons);
      phoneRefused = message.phone_refused || "";
      offerPhoneInvites();
      ringing.hello(message);
    } else if (message.type === "call.snapshot") onSnapshotPart(message);
    else if (message.type === "call.delta") onDelta(message);
    else if (message.type === "error") say(message.message, "bad");
  },
});
// A call answered to hold: music until a person takes it.
const waiting = document.getElementById("waiting");
let takeMounted = false;

function paintWaiting() {
  const held = Boolean(call.waiting_since) && call.state !== "terminated";
  waiting.hidden = !held;
  if (!held) return;
  document.getElementById("waiting-text").textContent = waitingText(call.waiting_since).replace(/^w/, "W");
  const limit = document.getElementById("waiting-limit");
  limit.textContent = waitLimitText(call);
  limit.hidden = !limit.textContent;
  if (canAct && !takeMounted) {
    takeMounted = true;
    const status = document.getElementById("waiting-status");
    document.getElementById("waiting-take").append(
      takeButton(socket, callId, (answer) => {
        status.textContent = answer.type === "action.accepted" ? "Taken: the music stops." : answer.message;
        status.dataset.status = answer.type === "action.accepted" ? "accepted" : "refused";
      }),
    );
  }
}

// While the call rings: the answer, reject and redirect controls, as on the board.
const ringing = new RingingPanel({ section: document.getElementById("ringing"), socket, canAct, link: false });
socket.connect();
setInterval(tick, 1000);
