// The board's alert banner (supervisors and admins): open alerts from the board
// snapshot, "alerts.delta" as they are raised or cleared, and each "board.pulse"
// (the whole open list, which also brings alerts raised in other processes).
// A browser notification for each new alert once the person opts in (the toggle
// is kept in localStorage, and the browser asks for its permission once).

import { clockTime, currentSocket, el } from "./live.js";

const box = document.getElementById("alerts");
const list = document.getElementById("alert-list");
const count = document.getElementById("alert-count");
const toggle = document.getElementById("notify-toggle");
const STORE_KEY = "callbot.notifications";
const TITLE = document.title;

const open = new Map(); // id -> alert
let primed = false; // the first list is what was open already: no notifications

function notificationsOn() {
  return localStorage.getItem(STORE_KEY) === "on" && "Notification" in window && Notification.permission === "granted";
}

function paintToggle() {
  if (!toggle) return;
  const on = notificationsOn();
  toggle.setAttribute("aria-pressed", String(on));
  toggle.textContent = `Notifications: ${on ? "on" : "off"}`;
  if ("Notification" in window && Notification.permission === "denied") toggle.title = "Your browser blocks notifications for this site.";
}

toggle?.addEventListener("click", async () => {
  if (notificationsOn()) {
    localStorage.setItem(STORE_KEY, "off");
  } else if ("Notification" in window) {
    const answer = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    localStorage.setItem(STORE_KEY, answer === "granted" ? "on" : "off");
  }
  paintToggle();
});

function notify(alert) {
  if (!primed || !notificationsOn()) return;
  const note = new Notification(`${alert.label}: ${alert.call_label || "Callbot"}`, { body: alert.message, tag: `callbot-alert-${alert.id}` });
  note.onclick = () => {
    window.focus();
    if (alert.call_id) location.assign(`/calls/${alert.call_id}/`);
  };
}

function item(alert) {
  const li = el("li", { class: "alert", dataset: { alertId: alert.id, kind: alert.kind } });
  const what = alert.call_id ? el("a", { href: `/calls/${alert.call_id}/` }, alert.call_label || `call ${alert.call_id}`) : alert.call_label || "";
  li.append(el("strong", {}, alert.label), " ", what, " ", el("span", { class: "msg" }, alert.message));
  const meta = `since ${clockTime(alert.raised_at)}${alert.count > 1 ? ` · ${alert.count}×` : ""}`;
  li.append(" ", el("time", { datetime: alert.raised_at }, meta), " ");
  const dismiss = el("button", { type: "button", class: "link", dataset: { dismiss: alert.id }, title: "Take this alert off the board for everyone" }, "Dismiss");
  li.append(dismiss);
  return li;
}

function render() {
  const alerts = [...open.values()].sort((a, b) => (b.raised_at || "").localeCompare(a.raised_at || ""));
  list.replaceChildren(...alerts.map(item));
  box.hidden = alerts.length === 0;
  count.textContent = alerts.length || "";
  document.title = alerts.length ? `(${alerts.length}) ${TITLE}` : TITLE;
}

function replace(alerts) {
  const before = new Set(open.keys());
  open.clear();
  for (const a of alerts) {
    open.set(a.id, a);
    if (!before.has(a.id)) notify(a);
  }
  primed = true;
  render();
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-dismiss]");
  if (!button) return;
  const id = Number(button.dataset.dismiss);
  button.disabled = true;
  currentSocket()?.send({ type: "alert.dismiss", alert: id, request_id: `d${id}` });
});

document.addEventListener("live:message", (event) => {
  const message = event.detail;
  if ((message.type === "board.snapshot" || message.type === "board.pulse") && message.alerts) replace(message.alerts.open);
  else if (message.type === "alerts.delta") {
    for (const id of message.cleared || []) open.delete(id);
    for (const a of message.raised || []) {
      const known = open.has(a.id);
      open.set(a.id, a);
      if (!known) notify(a);
    }
    render();
  } else if (message.type === "alert.dismissed" && message.dismissed) {
    open.delete(message.alert);
    render();
  }
});

paintToggle();
