// The live socket: connect, subscribe, reconnect with backoff, show the banner.
//
// The page sets body[data-live] to connecting / connected / reconnecting / closed,
// which people see in the header and tests wait on. Subscriptions are re-sent on
// every (re)connect, and the server answers each with a fresh snapshot: that is
// how a reconnecting page catches up.

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];

export class LiveSocket {
  constructor({ onMessage, subscriptions }) {
    this.onMessage = onMessage;
    this.subscriptions = subscriptions;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.pending = new Map(); // request_id -> callback(answer)
    this.seq = 0;
    this.banner = document.getElementById("reconnecting");
    this.detail = document.getElementById("reconnect-detail");
    this.status = document.getElementById("live-status");
    window.addEventListener("online", () => this.reconnectNow());
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ws/live/`;
  }

  setState(state, text) {
    document.body.dataset.live = state;
    if (this.status) this.status.textContent = text;
    if (this.banner) this.banner.hidden = state !== "reconnecting";
  }

  connect() {
    clearTimeout(this.timer);
    this.setState(this.attempt ? "reconnecting" : "connecting", "connecting…");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setState("connected", "live");
      for (const sub of this.subscriptions) this.send({ type: "subscribe", ...sub });
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const waiting = message.request_id && this.pending.get(message.request_id);
      if (waiting) {
        this.pending.delete(message.request_id);
        waiting(message);
      }
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending("The connection dropped before the server answered.");
      if (event.code === 4401) {
        this.setState("closed", "signed out");
        location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      if (event.code === 4403) {
        this.setState("closed", "not allowed");
        return;
      }
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
      this.attempt += 1;
      this.setState("reconnecting", "reconnecting…");
      if (this.detail) this.detail.textContent = `attempt ${this.attempt}, next in ${(jittered / 1000).toFixed(1)} s`;
      this.timer = setTimeout(() => this.connect(), jittered);
    };
  }

  reconnectNow() {
    if (!this.ws) {
      this.attempt = Math.max(this.attempt, 1);
      this.connect();
    }
  }

  failPending(message) {
    for (const [id, callback] of this.pending) {
      callback({ type: "action.refused", request_id: id, code: "disconnected", message });
    }
    this.pending.clear();
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  resync(what) {
    this.send({ type: "resync", ...what });
  }

  // Send an action; ``onAnswer`` gets action.accepted or action.refused. Returns
  // the request id, or null when not connected (``onAnswer`` has run already).
  act(action, onAnswer) {
    const request_id = `r${Date.now().toString(36)}${(this.seq += 1)}`;
    if (!this.send({ type: "action", request_id, ...action })) {
      onAnswer({ type: "action.refused", request_id, code: "disconnected", message: "Not connected; wait for the page to reconnect." });
      return null;
    }
    this.pending.set(request_id, onAnswer);
    return request_id;
  }
}

// Clock offset to the server, so durations agree whatever the browser's clock says.
let offsetMs = 0;
export function syncClock(serverTime) {
  if (serverTime) offsetMs = Date.parse(serverTime) - Date.now();
}
export function serverNow() {
  return Date.now() + offsetMs;
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "–";
  const end = toIso ? Date.parse(toIso) : serverNow();
  let s = Math.max(0, Math.floor((end - Date.parse(fromIso)) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

// One formatter for the page: toLocaleTimeString builds a new one per call, which
// costs a fraction of a millisecond and adds up over a 1,000-person roster.
const TIME_FORMAT = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

export function clockTime(iso) {
  if (!iso) return "";
  return TIME_FORMAT.format(new Date(iso));
}

export const KIND_LABELS = { peer_to_peer: "Peer-to-peer", group: "Group", meeting: "Meeting" };

export function stateLabel(state) {
  return (state || "").replace(/_/g, " ");
}

// Small DOM helper: el("td", {class: "num"}, "text").
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

// Run ``fn`` once per animation frame however often it is asked for: many deltas
// in one frame cost one DOM pass.
export function frameBatcher(fn) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      fn();
    });
  };
}
