// Ringing incoming calls: who calls, how long it has rung, the countdown to Graph's
// answer deadline, and the supervisor's three decisions (answer into a flow,
// reject with a reason, redirect to a saved or typed target). The board shows every
// ringing call at its top; the call page shows its own call. Sound and a browser
// notification only for people who switched them on (kept in localStorage).

import { clockTime, el, serverNow } from "./live.js";
import { applyOffers } from "./offered.js";

const ALERTS_KEY = "callbot.ringAlerts";
const REJECT_REASONS = [
  ["busy", "Busy"],
  ["forbidden", "Forbidden"],
  ["none", "No reason"],
];

export function isPhone(text) {
  return text.startsWith("+") || /^[\d\s().-]+$/.test(text);
}

export function isRinging(row) {
  return row.state === "incoming" && row.direction !== "outgoing";
}

// Time rung rounds down and time left rounds up, so the two add up to the window.
function secondsUp(ms) {
  return Math.max(0, Math.ceil(ms / 1000));
}

function secondsDown(ms) {
  return Math.max(0, Math.floor(ms / 1000));
}

export class RingingPanel {
  // section: the element holding the list (hidden while nothing rings); socket: the
  // page's LiveSocket; canAct: whether to draw the controls; link: whether the
  // caller links to the call page (not on that page itself).
  constructor({ section, socket, canAct, link = true }) {
    this.section = section;
    this.list = section.querySelector(".ringing-list");
    this.count = section.querySelector(".ringing-count");
    this.socket = socket;
    this.canAct = canAct;
    this.link = link;
    this.cards = new Map(); // call id -> {row, li, parts}
    this.flows = [];
    this.targets = [];
    this.phoneRefused = "";
    this.seen = new Set(); // ids already announced (or present at the first snapshot)
    this.primed = false;
    setInterval(() => this.tick(), 250);
  }

  // The server's hello: the flows and saved targets the controls offer.
  hello(message) {
    this.flows = message.answer_flows || [];
    this.targets = message.redirect_targets || [];
    // Why a phone number cannot be reached ("" when it can): no application instance.
    this.phoneRefused = message.phone_refused || "";
    for (const card of this.cards.values()) this.fillChoices(card);
  }

  // After the first board snapshot, ringing calls already there are not "new".
  prime(rows) {
    for (const row of rows) this.seen.add(row.id);
    this.primed = true;
  }

  update(row) {
    const card = this.cards.get(row.id);
    if (!isRinging(row)) {
      if (card) this.drop(card);
      return;
    }
    if (card) {
      card.row = { ...card.row, ...row };
      this.paint(card);
      return;
    }
    this.add(row);
    if (this.primed && !this.seen.has(row.id)) alert(row);
    this.seen.add(row.id);
  }

  remove(id) {
    const card = this.cards.get(id);
    if (card) this.drop(card);
  }

  add(row) {
    const li = el("li", { class: "ring-card", dataset: { callId: row.id, state: "incoming" } });
    const who = this.link ? el("a", { href: `/calls/${row.id}/`, class: "caller" }) : el("strong", { class: "caller" });
    const rang = el("span", { class: "rang" });
    const left = el("span", { class: "deadline", role: "timer" });
    const bar = el("span", { class: "deadline-bar" }, el("span"));
    const limit = el("p", { class: "wait-limit", role: "timer", hidden: true });
    li.append(el("div", { class: "ring-head" }, el("span", { class: "bell", "aria-hidden": "true" }, "☎"), who, rang, left), bar, limit);
    const parts = { who, rang, left, bar: bar.firstChild, limit };
    if (this.canAct) {
      const controls = el("div", { class: "ring-controls" });
      const status = el("span", { class: "ring-status", role: "status" });
      controls.append(this.answerForm(row, parts), this.rejectForm(row), this.redirectForm(row, parts), status);
      parts.status = status;
      li.append(controls);
    }
    const card = { row, li, parts };
    this.cards.set(row.id, card);
    this.list.prepend(li);
    this.fillChoices(card);
    this.paint(card);
    this.show();
  }

  answerForm(row, parts) {
    const flow = el("select", { name: "flow", "aria-label": "Answer into" });
    parts.flow = flow;
    const form = el("form", { class: "ring-form", dataset: { kind: "answer" } }, el("label", {}, "Into ", flow), el("button", { type: "submit", class: "primary", dataset: { kind: "answer" } }, "Answer"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = flow.value === "hold" ? { flow: "hold" } : flow.value ? { flow: Number(flow.value) } : {};
      this.act(row.id, "answer", params, form);
    });
    return form;
  }

  rejectForm(row) {
    const reason = el("select", { name: "reason", "aria-label": "Reject reason" });
    for (const [value, text] of REJECT_REASONS) reason.append(el("option", { value }, text));
    const form = el("form", { class: "ring-form", dataset: { kind: "reject" } }, el("label", {}, "Reason ", reason), el("button", { type: "submit", class: "danger", dataset: { kind: "reject" } }, "Reject"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.act(row.id, "reject", { reason: reason.value }, form);
    });
    return form;
  }

  redirectForm(row, parts) {
    const saved = el("select", { name: "saved_target", "aria-label": "Redirect to" });
    const typed = el("input", { name: "target", placeholder: "Azure AD object id or +phone", "aria-label": "Teams user id or phone number", size: "24", hidden: true });
    saved.addEventListener("change", () => {
      typed.hidden = saved.value !== "";
      if (!typed.hidden) typed.focus();
    });
    parts.saved = saved;
    parts.typed = typed;
    const form = el("form", { class: "ring-form", dataset: { kind: "redirect" } }, el("label", {}, "To ", saved), typed, el("button", { type: "submit", dataset: { kind: "redirect" } }, "Redirect"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let params;
      if (saved.value) params = { saved_target: Number(saved.value) };
      else {
        const value = typed.value.trim();
        if (!value) {
          this.say(row.id, "Choose a saved target or type a user id or +phone number.", "refused");
          typed.focus();
          return;
        }
        params = { target: isPhone(value) ? { phone: value } : { user_id: value } };
      }
      const phone = params.target ? Boolean(params.target.phone) : this.targets.find((t) => t.id === params.saved_target)?.kind === "phone";
      if (phone && this.phoneRefused) {
        this.say(row.id, this.phoneRefused, "refused");
        return;
      }
      this.act(row.id, "redirect", params, form);
    });
    return form;
  }

  fillChoices(card) {
    const { flow, saved, typed } = card.parts;
    if (!flow) return;
    const keepFlow = flow.value;
    flow.replaceChildren(
      ...this.flows.map((f) => el("option", { value: f.id }, f.name)),
      el("option", { value: "hold" }, "hold with music until someone takes it"),
      el("option", { value: "" }, "no flow (just answer)"),
    );
    const operator = this.flows.find((f) => f.name === "operator");
    flow.value = keepFlow || (operator ? String(operator.id) : flow.options[0]?.value ?? "");
    const keepSaved = saved.value;
    // A saved phone target stays listed but cannot be chosen without the
    // application instance; its title says why.
    const blocked = (t) => t.kind === "phone" && Boolean(this.phoneRefused);
    saved.replaceChildren(
      ...this.targets.map((t) => el("option", { value: t.id, disabled: blocked(t) || null, title: blocked(t) ? this.phoneRefused : null }, `${t.name} (${t.kind === "phone" ? "phone" : "Teams"})`)),
      el("option", { value: "" }, "someone else…"),
    );
    const first = this.targets.find((t) => !blocked(t));
    saved.value = keepSaved || (first ? String(first.id) : "");
    typed.hidden = saved.value !== "";
    typed.placeholder = this.phoneRefused ? "Azure AD object id" : "Azure AD object id or +phone";
  }

  act(callId, kind, params, form) {
    const card = this.cards.get(callId);
    if (!card) return;
    card.busy = kind;
    this.paint(card);
    this.say(callId, `${form.querySelector("button").textContent}…`, "pending");
    this.socket.act({ call: callId, kind, params }, (answer) => {
      const current = this.cards.get(callId);
      if (!current) return;
      current.busy = null;
      if (answer.type === "action.accepted") this.say(callId, `${kind === "answer" ? "Answering" : kind === "reject" ? "Rejecting" : "Redirecting"}: sent to Teams.`, "accepted");
      else this.say(callId, answer.message || "Refused.", "refused");
      this.paint(current);
    });
  }

  say(callId, text, status) {
    const card = this.cards.get(callId);
    if (!card?.parts.status) return;
    card.parts.status.textContent = text;
    card.parts.status.dataset.status = status;
  }

  paint(card) {
    const r = card.row;
    card.parts.who.textContent = r.caller || r.subject || "Unknown caller";
    card.parts.who.title = r.graph_id || "";
    card.li.dataset.version = r.version;
    // Answer, reject and redirect are offered only where the server says so (the
    // app may lack the permission to redirect); the reason shows beside each.
    applyOffers(card.li, r.unavailable);
    this.tick(card);
  }

  tick(only = null) {
    const now = serverNow();
    for (const card of only ? [only] : this.cards.values()) {
      const r = card.row;
      const started = Date.parse(r.created_at);
      const by = Date.parse(r.answer_by);
      card.parts.rang.textContent = Number.isNaN(started) ? "" : `rang ${secondsDown(now - started)} s`;
      const late = !Number.isNaN(by) && now >= by;
      const total = Number.isNaN(by) || Number.isNaN(started) ? 1 : by - started;
      card.parts.left.textContent = Number.isNaN(by) ? "" : late ? "answer deadline passed" : `${secondsUp(by - now)} s to answer`;
      card.parts.bar.style.width = Number.isNaN(by) ? "0" : `${Math.max(0, Math.min(100, ((by - now) / total) * 100))}%`;
      const limit = waitLimitText(r);
      if (card.parts.limit.textContent !== limit) card.parts.limit.textContent = limit;
      card.parts.limit.hidden = !limit;
      card.li.classList.toggle("late", late);
      card.li.classList.toggle("urgent", !late && by - now < 5000);
      for (const button of card.li.querySelectorAll("button")) button.disabled = late || Boolean(card.busy) || button.dataset.notOffered === "true";
    }
  }

  drop(card) {
    this.cards.delete(card.row.id);
    card.li.remove();
    this.show();
  }

  show() {
    this.section.hidden = this.cards.size === 0;
    if (this.count) this.count.textContent = this.cards.size;
    // The KPI strip's "ringing" and "longest wait" follow this list at once rather
    // than the next pulse, so the two never disagree.
    let oldest = null;
    for (const card of this.cards.values()) {
      if (card.row.created_at && (oldest === null || card.row.created_at < oldest)) oldest = card.row.created_at;
    }
    document.dispatchEvent(new CustomEvent("ringing:changed", { detail: { count: this.cards.size, oldest } }));
  }
}

// --- opt-in sound and notification ---------------------------------------------------

export function alertsOn() {
  return localStorage.getItem(ALERTS_KEY) === "on";
}

// The toggle on the board: ask for the Notification permission on the click that
// switches it on (browsers allow the request only from a gesture).
export function wireAlertToggle(input) {
  if (!input) return;
  input.checked = alertsOn();
  input.addEventListener("change", async () => {
    localStorage.setItem(ALERTS_KEY, input.checked ? "on" : "off");
    if (input.checked && "Notification" in window && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        // Older browsers take a callback instead; the sound still plays.
      }
    }
    if (input.checked) chime();
  });
}

let audio = null;

function chime() {
  try {
    audio = audio || new AudioContext();
    const start = audio.currentTime;
    for (const [offset, pitch] of [
      [0, 880],
      [0.18, 660],
    ]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = pitch;
      gain.gain.setValueAtTime(0.15, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.17);
    }
  } catch {
    // No audio device: the notification and the board still say it.
  }
}

function alert(row) {
  if (!alertsOn()) return;
  chime();
  if ("Notification" in window && Notification.permission === "granted") {
    const note = new Notification("Incoming call", { body: `${row.caller || "Unknown caller"} is calling`, tag: `call-${row.id}` });
    note.onclick = () => {
      window.focus();
      location.assign(`/calls/${row.id}/`);
    };
  }
  document.body.dataset.lastRing = String(row.id);
}

// --- calls held with music until a person takes them -------------------------------

// A "Take" button for a call waiting for a person: stops the music and marks the
// call taken (the person then transfers it to themselves or joins it in Teams).
// ``onAnswer`` gets the socket's answer.
export function takeButton(socket, callId, onAnswer) {
  const button = el("button", { type: "button", class: "primary take", dataset: { kind: "take" } }, "Take");
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    button.disabled = true;
    button.textContent = "Taking…";
    socket.act({ call: callId, kind: "take", params: {} }, (answer) => {
      button.disabled = false;
      button.textContent = "Take";
      onAnswer(answer);
    });
  });
  return button;
}

// A call waiting for a supervisor with a time limit (a call policy's hand-off
// while it rings, an IVR queue while held): when the wait ends, a countdown to
// it, and what Callbot does then. "" when the call has no such wait now.
export function waitLimitText(row) {
  if (!row.wait_ends_at || row.state === "terminated") return "";
  const handedOff = row.state === "incoming";
  if (!handedOff && !row.waiting_since) return "";
  const ends = Date.parse(row.wait_ends_at);
  if (Number.isNaN(ends)) return "";
  const left = secondsUp(ends - serverNow());
  const then = row.wait_then || "the fallback";
  if (handedOff) {
    return left > 0 ? `Fallback at ${clockTime(row.wait_ends_at)} (in ${left} s): ${then}` : `Fallback due: ${then}`;
  }
  return left > 0 ? `${left} s left in the queue (until ${clockTime(row.wait_ends_at)}), then ${then}` : `Queue wait over: ${then}`;
}

export function waitingText(since) {
  const started = Date.parse(since);
  if (Number.isNaN(started)) return "waiting for a person";
  const s = Math.max(0, Math.floor((serverNow() - started) / 1000));
  return `waiting for a person ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
