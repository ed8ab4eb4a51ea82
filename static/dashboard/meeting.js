// A meeting's page, live: the bot's calls in this meeting appear and change state
// without a reload, so a join's progress (establishing → established, or why it
// failed) shows here. It follows the board's rows for this meeting (each row names
// its meeting_id), so it needs no subscription of its own.

import { LiveSocket, el, stateLabel } from "./live.js";

const root = document.getElementById("meeting");
const meetingId = Number(root.dataset.meetingId);
const table = document.getElementById("meeting-calls");
const rows = document.getElementById("meeting-call-rows");
const empty = document.getElementById("meeting-calls-empty");
const progress = document.getElementById("join-progress");
const known = new Map(); // call id -> {tr, data}

for (const tr of rows.querySelectorAll("tr[data-call-id]")) {
  const id = Number(tr.dataset.callId);
  const result = tr.querySelector("[data-col=result]")?.textContent || "";
  const version = tr.dataset.version ? Number(tr.dataset.version) : null;
  known.set(id, { tr, data: { id, version, state: tr.querySelector(".state")?.dataset.state, result } });
}

function stamp(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function paint(entry) {
  const d = entry.data;
  const state = entry.tr.querySelector("[data-col=state]");
  state.replaceChildren(el("span", { class: "state", dataset: { state: d.state } }, stateLabel(d.state)));
  entry.tr.dataset.state = d.state;
  if (d.result) entry.tr.querySelector("[data-col=result]").textContent = d.result;
}

function tellProgress(d) {
  if (d.state === "establishing") progress.textContent = `Joining (call ${d.id}): Teams is connecting the bot…`;
  else if (d.state === "established") progress.textContent = `Joined (call ${d.id}): the bot is in the meeting.`;
  else if (d.state === "terminated") progress.textContent = `Call ${d.id} ended${d.result ? `: ${d.result}` : "."}`;
  progress.dataset.state = d.state;
}

// A row no newer than what the page holds is stale (a snapshot part read before
// a delta that overtook it): showing it would move the call's state backwards.
function stale(entry, row) {
  return entry && row.version != null && entry.data.version != null && row.version <= entry.data.version;
}

function upsert(row) {
  let entry = known.get(row.id);
  if (stale(entry, row)) return;
  if (!entry) {
    if (row.meeting_id !== meetingId || !("created_at" in row)) return;
    const tr = el("tr", { dataset: { callId: row.id } });
    tr.append(
      el("td", {}, el("a", { href: `/calls/${row.id}/` }, stamp(row.created_at))),
      el("td", { dataset: { col: "state" } }),
      el("td", { dataset: { col: "result" } }),
    );
    rows.prepend(tr);
    table.hidden = false;
    empty.hidden = true;
    entry = { tr, data: {} };
    known.set(row.id, entry);
  }
  const before = entry.data.state;
  entry.data = { ...entry.data, ...row };
  paint(entry);
  if (row.state && row.state !== before) tellProgress(entry.data);
}

// The newest call as the page was drawn is the join's progress so far: Teams may
// have answered before the page opened, and then no change of state follows.
const newest = rows.querySelector("tr[data-call-id]");
if (newest) tellProgress(known.get(Number(newest.dataset.callId)).data);

const socket = new LiveSocket({
  subscriptions: [{ board: true }],
  onMessage(message) {
    if (message.type === "board.snapshot") for (const row of message.calls || []) upsert(row);
    else if (message.type === "calls.delta" && message.call) upsert(message.call);
  },
});
socket.connect();
