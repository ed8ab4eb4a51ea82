// The live board: one row per live call, updated in place from deltas.
//
// The board is virtualised: the page holds every live call's data, but only the rows
// near the viewport are in the DOM (two spacer bodies stand in for the rest), so
// 10,000 live calls cost a screenful of rows. Filter and sort run over the data
// (boardview.js); a delta that leaves a row's place unchanged repaints that row alone.

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
const COLUMNS = ["kind", "subject", "state", "duration", "people", "muted", "sharing", "pending", "bot"];
// Rows kept in the DOM above and below the viewport, so a scroll shows rows at once.
const OVERSCAN = 40;
// A first guess at a row's height in pixels; measured once rows are painted.
let rowHeight = 33;

const calls = new Map(); // id -> {data, tr, cells, link, sub, viewKey, retiring}
const dirty = new Set();
const flush = frameBatcher(render);
const view = new BoardView(document.getElementById("board-tools"));
view.onChange = () => {
  viewDirty = true;
  flush();
};
let viewDirty = true;
let shown = []; // the entries that match the view, in its order
let subjects = new Map(); // meetings per subject, for telling twins apart
const inDom = new Set(); // entries whose row is in the DOM
let selectedId = null; // the row picked with j/k (keys.js)

function spacer() {
  const body = el("tbody", { class: "spacer", "aria-hidden": "true" });
  const td = el("td", { colspan: COLUMNS.length });
  body.append(el("tr", {}, td));
  return { body, td };
}
const above = spacer();
const below = spacer();
rowsBody.before(above.body);
rowsBody.after(below.body);

function createRow(entry) {
  const tr = el("tr", { dataset: { callId: entry.data.id } });
  for (const col of COLUMNS) {
    const numeric = ["duration", "people", "muted", "pending"].includes(col);
    tr.append(el("td", { class: numeric ? "num" : "", dataset: { col } }));
  }
  const link = el("a", { href: `/calls/${entry.data.id}/` });
  tr.children[1].append(link);
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    link.click();
  });
  entry.tr = tr;
  entry.link = link;
  entry.sub = null;
  entry.cells = Object.fromEntries([...tr.children].map((td) => [td.dataset.col, td]));
  paint(entry);
}

// A row leaves the DOM: its nodes go, its data stays.
function dropRow(entry) {
  entry.tr?.remove();
  entry.tr = entry.link = entry.sub = entry.cells = null;
  inDom.delete(entry);
}

function paint(entry) {
  const d = entry.data;
  const c = entry.cells;
  entry.tr.dataset.version = d.version;
  entry.tr.dataset.state = d.state;
  entry.tr.classList.toggle("ended", Boolean(entry.retiring));
  markSelected(entry);
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
  // Any control a row carries (data-kind) is offered only where Graph allows it.
  applyOffers(entry.tr, d.unavailable, labels);
  tick(entry);
}

function markSelected(entry) {
  const on = entry.data.id === selectedId;
  entry.tr.classList.toggle("selected", on);
  if (on) entry.tr.setAttribute("aria-selected", "true");
  else entry.tr.removeAttribute("aria-selected");
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

// The rows the viewport needs, from one layout read: [first, last) of ``shown``.
function windowRange() {
  const top = above.body.getBoundingClientRect().top;
  const first = Math.max(0, Math.floor(-top / rowHeight) - OVERSCAN);
  const reach = Math.max(0, Math.ceil((window.innerHeight - top) / rowHeight));
  const last = Math.min(shown.length, reach + OVERSCAN);
  return [Math.min(first, last), last];
}

function render() {
  // Rearrange only when the view changed or a row's place in it may have.
  let rearrange = viewDirty;
  for (const id of dirty) {
    const entry = calls.get(id);
    if (entry && entry.viewKey !== view.key(entry.data)) rearrange = true;
  }
  if (rearrange) ({ list: shown, subjects } = view.arrange(calls.values()));
  viewDirty = false;

  const [first, last] = windowRange();
  const wanted = shown.slice(first, last);
  const keep = new Set(wanted);
  for (const entry of [...inDom]) if (!keep.has(entry)) dropRow(entry);
  let created = false;
  let previous = null;
  for (const entry of wanted) {
    const fresh = !entry.tr;
    if (fresh) {
      createRow(entry);
      inDom.add(entry);
      created = true;
    } else if (dirty.has(entry.data.id)) paint(entry);
    if (fresh || rearrange || dirty.has(entry.data.id)) view.markTwin(entry, subjects);
    // Move a row only when it is out of place: moving costs a layout.
    const spot = previous ? previous.nextElementSibling : rowsBody.firstElementChild;
    if (spot !== entry.tr) {
      if (previous) previous.after(entry.tr);
      else rowsBody.prepend(entry.tr);
    }
    previous = entry.tr;
  }
  dirty.clear();
  // Never hidden: the upper spacer's position is where the list starts.
  above.td.style.height = `${first * rowHeight}px`;
  below.td.style.height = `${(shown.length - last) * rowHeight}px`;
  if (created && inDom.size) {
    // Rows differ (a dropped reason, a twin's line, phone cards): the next window
    // is sized on the rows painted now.
    const measured = rowsBody.offsetHeight / inDom.size;
    if (measured > 0) rowHeight = measured;
  }

  let live = 0;
  let pending = 0;
  for (const entry of calls.values()) {
    if (entry.data.state === "terminated") continue;
    live += 1;
    pending += entry.data.pending_actions || 0;
  }
  let matching = 0;
  for (const entry of shown) if (entry.data.state !== "terminated") matching += 1;
  count.textContent = matching === live ? live : `${matching} of ${live}`;
  empty.hidden = calls.size > 0;
  noneMatch.hidden = calls.size === 0 || shown.length > 0;
  // People in calls are counted in the KPI strip (callers of 1:1 calls included).
  summary.textContent = `${pending} pending actions`;
}

// j/k from keys.js: step through the rows the view shows, rendered or not.
function selectStep(step) {
  if (step === 0) selectedId = null;
  else if (shown.length) {
    const at = shown.findIndex((e) => e.data.id === selectedId);
    const next = at < 0 ? (step > 0 ? 0 : shown.length - 1) : Math.min(shown.length - 1, Math.max(0, at + step));
    const entry = shown[next];
    selectedId = entry.data.id;
    if (!entry.tr) {
      const top = above.body.getBoundingClientRect().top + window.scrollY;
      window.scrollTo({ top: Math.max(0, top + next * rowHeight - window.innerHeight / 2) });
    }
  }
  render();
  for (const entry of inDom) markSelected(entry);
  const picked = calls.get(selectedId);
  picked?.tr?.scrollIntoView({ block: "nearest" });
}
document.addEventListener("board:select", (event) => selectStep(event.detail.step));
window.addEventListener("scroll", flush, { passive: true });
window.addEventListener("resize", flush);

// --- notices: calls the bot was dropped from (board snapshot, calls.notice) ---------

let labels = {};

function addNotice(n) {
  if (notices.querySelector(`[data-call-id="${n.call_id}"]`)) return;
  const li = el("li", { class: "dropped", dataset: { callId: n.call_id, notice: n.kind } });
  li.append(el("a", { href: `/calls/${n.call_id}/` }, n.title || `call ${n.call_id}`), ": ", n.text);
  notices.prepend(li);
}

function upsert(data) {
  let entry = calls.get(data.id);
  if (!entry) {
    entry = { data, tr: null, viewKey: null, retiring: false };
    calls.set(data.id, entry);
  }
  entry.data = { ...entry.data, ...data };
  dirty.add(data.id);
  ringing.update(entry.data);
  if (data.state === "terminated") retire(entry);
}

function forget(id) {
  const entry = calls.get(id);
  if (!entry) return;
  calls.delete(id);
  dropRow(entry);
  viewDirty = true;
}

function retire(entry) {
  // Keep an ended call visible for a moment so a supervisor sees it go.
  if (entry.retiring) return;
  entry.retiring = true;
  setTimeout(() => {
    forget(entry.data.id);
    flush();
  }, ENDED_LINGER_MS);
}

// A board snapshot arrives in parts; deltas that come meanwhile wait for the whole.
const parts = new SnapshotParts(["calls"]);
let held = [];

let reasons = {}; // the snapshot's sets of unavailable reason codes, by the key rows carry

function onSnapshotPart(message) {
  if ((message.part ?? 1) === 1) reasons = message.unavailable || {};
  for (const row of message.calls || []) {
    if (typeof row.unavailable === "string") row.unavailable = reasons[row.unavailable] || {};
  }
  const whole = parts.add(message);
  if (!whole) {
    // The board is streamed newest first: show each part's rows as they come, so
    // the first screen paints before the last call is read. The whole snapshot
    // still decides, once complete, which calls are gone.
    if (parts.busy) {
      for (const row of message.calls || []) upsert(row);
      flush();
    }
    return;
  }
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
  for (const row of message.calls) {
    seen.add(row.id);
    const entry = calls.get(row.id);
    if (entry) entry.data = row; // replace, do not merge: the snapshot is the truth
    upsert(row);
  }
  for (const id of [...calls.keys()]) {
    if (!seen.has(id)) {
      forget(id);
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

// Durations move every second: only the rows in the DOM show them.
setInterval(() => {
  for (const entry of inDom) tick(entry);
}, 1000);
