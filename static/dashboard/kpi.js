// The board's KPI strip: figures from the board snapshot and each "board.pulse"
// (dashboard/kpis.py defines them; each tile's tooltip says what it counts). The
// longest wait is counted here from when that call started ringing. The ringing
// count and the longest wait follow the board's ringing list as it changes
// ("ringing:changed"), so the strip agrees with the list between pulses.

import { duration } from "./live.js";

const strip = document.getElementById("kpis");
let kpis = null;
let ringing = null; // {count, oldest} from the ringing list, once it has drawn

function tile(name) {
  return strip.querySelector(`[data-kpi="${name}"] .v`);
}

function set(name, text) {
  const node = tile(name);
  if (node && node.textContent !== String(text)) node.textContent = text;
}

function seconds(total) {
  if (total === null || total === undefined) return "–";
  const m = Math.floor(total / 60);
  const s = String(Math.round(total % 60)).padStart(2, "0");
  return `${m}:${s}`;
}

function paint() {
  if (!kpis) return;
  if (ringing) kpis = { ...kpis, ringing: ringing.count, longest_wait_since: ringing.oldest };
  strip.dataset.ready = "true";
  for (const name of ["ringing", "active", "in_ivr", "people", "answered_hour", "abandoned_hour", "failed_actions_hour"]) {
    set(name, kpis[name]);
  }
  set("avg_handle", seconds(kpis.avg_handle_seconds));
  tick();
  strip.querySelector('[data-kpi="ringing"]').classList.toggle("hot", kpis.ringing > 0);
  strip.querySelector('[data-kpi="failed_actions_hour"]').classList.toggle("hot", kpis.failed_actions_hour > 0);
}

function tick() {
  if (!kpis) return;
  set("longest_wait", kpis.longest_wait_since ? duration(kpis.longest_wait_since) : "–");
}

document.addEventListener("live:message", (event) => {
  const message = event.detail;
  if ((message.type === "board.snapshot" || message.type === "board.pulse") && message.kpis) {
    kpis = message.kpis;
    paint();
  }
});

document.addEventListener("ringing:changed", (event) => {
  ringing = event.detail;
  paint();
});

setInterval(tick, 1000);
