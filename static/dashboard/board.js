// The live board: one row per live call, updated in place from deltas.

import { followPlacing } from "./placing.js";
import { RingingPanel, takeButton, waitLimitText, waitingText, wireAlertToggle } from "./ringing.js";
import { DeltaOrder, LiveSocket, KIND_LABELS, SnapshotParts, duration, el, frameBatcher, stateLabel, syncClock } from "./live.js";
import { applyOffers, setReasons } from "./offered.js";
import { BoardView, title } from "./boardview.js";

const rowsBody = document.getElementById("board-rows");
const empty = document.getElementById("board-empty");
const count = document.getElementById("call-count");
const summary = document.getElementById("board-summary");
const notices = document.getElementById("board-notices");
const noneMatch = document.getElementById("board-none-match");
const ENDED_LINGER_MS = 8000;
const canAct = document.body.dataset.canAct === "true";

const calls = new Map(); // id -> {data, tr, cells, dirty}
const dirty = new Set();
const flush = frameBatcher(render);
const view = new BoardView(document.getElementById("board-tools"));
view.onChange = () => {
  viewDirty = true;
  flush();
};
let viewDirty = true;

function cellsFor(tr) {
  return Object.fromEntries([...tr.children].map((td) => [td.dataset.col, td]));
}

function createRow(data) {
  const tr = el("tr", { dataset: { callId: data.id } });
  for (const col of ["kind", "subject", "state", "duration", "people", "muted", "sharing", "pending", "bot"]) {
    const numeric = ["duration", "people", "muted", "pending"].includes(col);
    tr.append(el("td", { class: numeric ? "num" : "", dataset: { col } }));
  }
  const link = el("a", { href: `/calls/${data.id}/` });
  tr.children[1].append(link);
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    link.click();
  });
  const entry = { data, tr, cells: cellsFor(tr), link };
  calls.set(data.id, entry);
  rowsBody.prepend(tr);
  return entry;
}

function paint(entry) {
  const d = entry.data;
  const c = entry.cells;
  // Any control a row carries (data-kind) is offered only where Graph allows it.
  applyOffers(entry.tr, d.unavailable, labels);
  entry.tr.dataset.version = d.version;
  entry.tr.dataset.state = d.state;
  c.kind.textContent = KIND_LABELS[d.kind] || d.kind;
  entry.link.textContent = title(d);
  entry.link.title = d.graph_id || "";
  c.state.replaceChildren(el("span", { class: "state", dataset: { state: d.state } }, stateLabel(d.state)));
  if (d.dropped) c.state.append(el("span", { class: "why", dataset: { dropped: "true" } }, d.dropped));
  entry.tr.classList.toggle("waiting", Boolean(d.waiting_since) && d.state !== "terminated");
  if (d.waiting_since && d.state !== "terminated") {
    const badge = el("span", { class: "waiting-badge" }, waitingText(d.waiting_since));
    c.state.append(" ", badge);
    if (canAct) {
      c.state.append(
        " ",
        takeButton(socket, d.id, (answer) => {
          if (answer.type !== "action.refused") return;
          badge.textContent = answer.message;
          badge.dataset.said = "true";
        }),
      );
    }
  }
  // Waiting for a supervisor with a limit: the countdown (tick keeps it current).
  c.state.append(el("span", { class: "wait-limit", role: "timer", hidden: true }));
  // Peer-to-peer calls carry no roster: a zero there would mislead.
  const noRoster = d.kind === "peer_to_peer" && !d.participant_count;
  c.people.textContent = noRoster ? "1:1" : d.participant_count ?? "–";
  c.muted.textContent = noRoster ? "" : d.muted_count ?? "–";
  c.sharing.textContent = (d.sharing || []).join(", ") || "–";
  c.pending.textContent = d.pending_actions || "";
  c.pending.classList.toggle("hot", (d.pending_actions || 0) > 0);
  c.bot.replaceChildren(el("span", { class: d.bot_muted ? "mic off" : "mic on" }, d.bot_muted ? "muted" : "open"));
  applyOffers(entry.tr, d.unavailable, labels);
  tick(entry);
}

function tick(entry) {
  const d = entry.data;
  const badge = entry.cells.state.querySelector(".waiting-badge");
  if (badge && d.waiting_since && !badge.dataset.said) badge.textContent = waitingText(d.waiting_since);
  const limit = entry.cells.state.querySelector(".wait-limit");
  if (limit) {
    const text = waitLimitText(d);
    if (limit.textContent !== text) limit.textContent = text;
    limit.hidden = !text;
  }
  entry.cells.duration.textContent = duration(d.established_at || d.created_at, d.terminated_at);
}

function render() {
  for (const id of dirty) {
    const entry = calls.get(id);
    if (entry) paint(entry);
  }
  const changed = dirty.size > 0;
  dirty.clear();
  const live = [...calls.values()].filter((e) => e.data.state !== "terminated");
  let shown = live.length;
  if (changed || viewDirty) shown = view.apply(calls.values(), rowsBody);
  viewDirty = false;
  const filtered = [...calls.values()].filter((e) => !e.tr.hidden && e.data.state !== "terminated").length;
  count.textContent = filtered === live.length ? live.length : `${filtered} of ${live.length}`;
  empty.hidden = calls.size > 0;
  noneMatch.hidden = calls.size === 0 || shown > 0;
  // People in calls are counted in the KPI strip (callers of 1:1 calls included).
  const pending = live.reduce((n, e) => n + (e.data.pending_actions || 0), 0);
  summary.textContent = `${pending} pending actions`;
}

// --- notices: calls the bot was dropped from (board snapshot, calls.notice) ---------

let labels = {};

function addNotice(n) {
  if (notices.querySelector(`[data-call-id="${n.call_id}"]`)) return;
  const li = el("li", { class: "dropped", dataset: { callId: n.call_id, notice: n.kind } });
  li.append(el("a", { href: `/calls/${n.call_id}/` }, n.title || `call ${n.call_id}`), ": ", n.text);
  notices.prepend(li);
}

function upsert(data) {
  const entry = calls.get(data.id) || createRow(data);
  entry.data = { ...entry.data, ...data };
  dirty.add(data.id);
  ringing.update(entry.data);
  if (data.state === "terminated") retire(entry);
}

function retire(entry) {
  // Keep an ended call visible for a moment so a supervisor sees it go.
  if (entry.retiring) return;
  entry.retiring = true;
  entry.tr.classList.add("ended");
  setTimeout(() => {
    calls.delete(entry.data.id);
    entry.tr.remove();
    viewDirty = true;
    flush();
  }, ENDED_LINGER_MS);
}

// A board snapshot arrives in parts; deltas that come meanwhile wait for the whole.
const parts = new SnapshotParts(["calls"]);
let held = [];

function onSnapshotPart(message) {
  const whole = parts.add(message);
  if (!whole) return;
  onSnapshot(whole);
  const waiting = held;
  held = [];
  for (const row of waiting) onDelta(row);
}

function onSnapshot(message) {
  syncClock(message.server_time);
  for (const n of [...(message.notices || [])].reverse()) addNotice(n);
  if (!ringing.primed) ringing.prime(message.calls);
  const seen = new Set();
  for (const row of [...message.calls].reverse()) {
    seen.add(row.id);
    const entry = calls.get(row.id);
    if (entry) entry.data = row; // replace, do not merge: the snapshot is the truth
    upsert(row);
  }
  for (const [id, entry] of calls) {
    if (!seen.has(id)) {
      calls.delete(id);
      entry.tr.remove();
      ringing.remove(id);
    }
  }
  order.afterSnapshot();
  flush();
}

// Row changes in version order per call (live.js); a gap asks for the whole board.
const order = new DeltaOrder({
  current: (id) => calls.get(id)?.data.version ?? null,
  apply(id, row) {
    upsert(row);
    flush();
  },
  resync() {
    if (!parts.busy) socket.resync({ board: true }); // one is on its way
  },
});

function onDelta(row) {
  if (parts.busy) {
    held.push(row);
    return;
  }
  if (!calls.has(row.id)) {
    if (row.state === "terminated") return;
    if ("created_at" in row) {
      upsert(row); // a new call's first row comes whole
      order.drain(row.id);
      flush();
      return;
    }
  }
  order.offer(row.id, row); // a change to a call we have not seen yet waits too
}

let placing = () => {};
const socket = new LiveSocket({
  subscriptions: [{ board: true }],
  onMessage(message) {
    placing(message);
    if (message.type === "hello") {
      labels = message.labels || {};
      setReasons(message.reasons);
      ringing.hello(message);
    }
    else if (message.type === "board.snapshot") onSnapshotPart(message);
    else if (message.type === "calls.delta") onDelta(message.call);
    else if (message.type === "calls.notice") addNotice(message.notice);
  },
});
placing = followPlacing(socket);
// Ringing calls sit at the top of the page, with their controls for people who act.
const ringing = new RingingPanel({ section: document.getElementById("ringing"), socket, canAct });
wireAlertToggle(document.getElementById("ring-alerts"));
socket.connect();

setInterval(() => {
  for (const entry of calls.values()) tick(entry);
}, 1000);
