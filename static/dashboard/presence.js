// Who else watches this call, and what supervisors did on it lately.
//
// The server sends the watchers in the call snapshot and a "call.presence" when
// they change; a "call.act" when someone else asks for an action here (this page
// learns its own from "action.accepted"). When two people act on the same
// participant within CLASH_SECONDS, both pages show a notice naming the other.

import { el, serverNow } from "./live.js";

const root = document.getElementById("call");
const callId = Number(root.dataset.callId);
const watchersNode = document.getElementById("watchers");
const presence = document.getElementById("presence");
const actsList = document.getElementById("recent-acts");
const clash = document.getElementById("act-clash");
// As dashboard/presence.py's ACT_CONFLICT_SECONDS.
const CLASH_SECONDS = 10;
const ACTS_SHOWN = 8;

let me = "";
let labels = {};
const acts = []; // newest first: {user, label, target, participant, at (ms)}

function showWatchers(watchers) {
  const others = (watchers || []).filter((name) => name !== me);
  presence.dataset.count = others.length;
  if (!others.length) {
    watchersNode.replaceChildren("nobody else");
    return;
  }
  watchersNode.replaceChildren(...others.map((name) => el("span", { class: "who-chip", title: `${name} has this call open` }, el("span", { class: "avatar", "aria-hidden": "true" }, name.slice(0, 1).toUpperCase()), name)));
}

function ago(at) {
  const s = Math.max(0, Math.round((serverNow() - at) / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ago` : `${Math.floor(m / 60)} h ago`;
}

function who(name) {
  return name === me ? "you" : name;
}

function actText(act) {
  return `${who(act.user)}: ${act.label}${act.target ? ` → ${act.target}` : ""}`;
}

function renderActs() {
  if (!acts.length) {
    actsList.replaceChildren(el("li", { class: "none" }, "None since this page opened."));
    return;
  }
  actsList.replaceChildren(
    ...acts.slice(0, ACTS_SHOWN).map((act) => {
      const li = el("li", { dataset: { user: act.user, participant: act.participant || "" } }, actText(act), " ");
      li.append(el("time", { dataset: { at: act.at } }, `(${ago(act.at)})`));
      return li;
    }),
  );
}

function tick() {
  for (const t of actsList.querySelectorAll("time[data-at]")) t.textContent = `(${ago(Number(t.dataset.at))})`;
}

function showClash(act, others) {
  const names = [...new Set(others.map((o) => who(o.user)))];
  const whom = act.target || "the same person";
  const parts = [act, ...others].map((a) => `${who(a.user)} ${a.label}`).join(", ");
  clash.replaceChildren(el("strong", {}, `${[who(act.user), ...names].join(" and ")} acted on ${whom} within ${CLASH_SECONDS} s: `), parts, ". Check before acting again.");
  clash.dataset.participant = act.participant || "";
  clash.hidden = false;
}

function remember(act) {
  acts.unshift(act);
  acts.length = Math.min(acts.length, 50);
  renderActs();
}

function recentOthers(act) {
  return acts.filter((o) => o !== act && o.participant && o.participant === act.participant && o.user !== act.user && Math.abs(act.at - o.at) <= CLASH_SECONDS * 1000);
}

document.addEventListener("live:message", (event) => {
  const m = event.detail;
  if (m.type === "hello") {
    me = m.user;
    labels = m.labels || {};
  } else if (m.type === "call.snapshot" && m.call_id === callId && m.presence) {
    showWatchers(m.presence.watchers);
  } else if (m.type === "call.presence" && m.call_id === callId) {
    showWatchers(m.watchers);
  } else if (m.type === "call.act" && m.call_id === callId) {
    const act = { user: m.user, label: m.label, target: m.target, participant: m.participant, at: Date.parse(m.at_iso) || serverNow() };
    remember(act);
    const others = (m.others || []).map((o) => ({ ...o, at: o.at * 1000 }));
    if (others.length) showClash(act, others);
    else {
      const mine = recentOthers(act).filter((o) => o.user === me);
      if (mine.length) showClash(act, mine);
    }
  } else if (m.type === "action.accepted" && m.call === callId && m.actions.length) {
    const shape = m.actions[0];
    const act = { user: me, label: labels[m.kind] || m.kind, target: shape.target || "", participant: shape.participant_id || "", at: serverNow() };
    remember(act);
    const others = recentOthers(act);
    if (others.length) showClash(act, others);
  }
});

clash.addEventListener("click", () => {
  clash.hidden = true;
});

renderActs();
setInterval(tick, 1000);
