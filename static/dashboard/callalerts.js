// The call page's own alerts (supervisors and admins): the open alerts of this
// call from its snapshot ("alerts.open"), then "call.alerts" as they are raised or
// cleared, live. The board's banner lists every call's; this one only the call's.

import { clockTime, el } from "./live.js";

const root = document.getElementById("call");
const callId = Number(root.dataset.callId);
const box = document.getElementById("call-alerts");
const list = document.getElementById("call-alert-list");
const open = new Map(); // id -> alert

function item(alert) {
  const li = el("li", { class: "alert", dataset: { alertId: alert.id, kind: alert.kind } });
  li.append(el("strong", {}, alert.label), " ", el("span", { class: "msg" }, alert.message));
  const meta = `since ${clockTime(alert.raised_at)}${alert.count > 1 ? ` · ${alert.count}×` : ""}`;
  li.append(" ", el("time", { datetime: alert.raised_at }, meta));
  return li;
}

function paint() {
  const alerts = [...open.values()].sort((a, b) => Date.parse(b.raised_at) - Date.parse(a.raised_at));
  list.replaceChildren(...alerts.map(item));
  box.hidden = alerts.length === 0;
}

if (box && list) {
  document.addEventListener("live:message", (event) => {
    const m = event.detail;
    if (m.type === "call.snapshot" && m.call_id === callId && m.alerts) {
      open.clear();
      for (const alert of m.alerts.open) open.set(alert.id, alert);
      paint();
    } else if (m.type === "call.alerts" && m.call_id === callId) {
      for (const alert of m.raised) open.set(alert.id, alert);
      for (const id of m.cleared) open.delete(id);
      paint();
    }
  });
}
