// The live socket: connect, subscribe, reconnect with backoff, show the banner.
//
// The page sets body[data-live] to connecting / connected / reconnecting / closed,
// which people see in the header and tests wait on. Subscriptions are re-sent on
// every (re)connect, and the server answers each with a fresh snapshot: that is
// how a reconnecting page catches up.

// Reconnect delays double from the first to the cap. An open socket is not yet a
// working one: while its Redis is down the server accepts each socket and closes it
// at once (1011), so the backoff starts over only once a connection has proven
// itself, by its first snapshot or by staying open HEALTHY_AFTER_MS.
const BACKOFF_FIRST_MS = 250;
const BACKOFF_CAP_MS = 15000;
const HEALTHY_AFTER_MS = 5000;

// Half the delay fixed, half random ("equal jitter"): pages dropped together by one
// server restart come back spread out, and never later than the cap.
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

// The page's socket, for modules that only listen (presence, alerts, keys): they
// hear every message as a "live:message" event on document and send through it.
let current = null;
export function currentSocket() {
  return current;
}

export class LiveSocket {
  constructor({ onMessage, subscriptions }) {
    current = this;
    this.onMessage = onMessage;
    this.subscriptions = subscriptions;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.healthyTimer = null;
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
      this.setState("connected", "live");
      this.healthyTimer = setTimeout(() => this.proven(ws), HEALTHY_AFTER_MS);
      for (const sub of this.subscriptions) this.send({ type: "subscribe", ...sub });
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type?.endsWith(".snapshot")) this.proven(ws);
      const waiting = message.request_id && this.pending.get(message.request_id);
      if (waiting) {
        this.pending.delete(message.request_id);
        waiting(message);
      }
      this.onMessage(message);
      document.dispatchEvent(new CustomEvent("live:message", { detail: message }));
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.healthyTimer);
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
      // 4429: the server closed a socket that sent too many bad or excess messages
      // (dashboard/protocol.py). Say why, and come back no sooner than the cap.
      // Daphne drops close reasons: the words are the page's own.
      const flooded = event.code === 4429;
      const delay = flooded ? BACKOFF_CAP_MS : backoffDelay(this.attempt);
      this.attempt += 1;
      this.setState("reconnecting", "reconnecting…");
      // 4503: the server could not reach its channel layer (Redis); same backoff.
      const why = flooded
        ? "The server closed the connection: too many bad or excess messages. "
        : event.code === 4503
          ? "The server lost its live channel (Redis); "
          : "";
      if (this.detail) this.detail.textContent = `${why}attempt ${this.attempt}, next in ${(delay / 1000).toFixed(1)} s`;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  // The connection works: the next drop starts the backoff from the beginning.
  proven(ws) {
    if (this.ws !== ws) return;
    clearTimeout(this.healthyTimer);
    this.attempt = 0;
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

// Snapshots come in parts (dashboard/snapshots.py): each names its snapshot, says
// its ``part`` number and whether ``more`` follow (older servers said ``part`` of
// ``parts`` only); the first carries everything but the long lists, and each part a
// slice of them, in order. ``add`` returns the whole snapshot once its last part
// arrived, else null; ``busy`` says one is still arriving (a page holds its deltas
// meanwhile, and may show the rows so far). A part that does not follow on drops
// what was gathered: the next snapshot starts afresh.
export class SnapshotParts {
  constructor(lists) {
    this.lists = lists; // the names of the list fields to concatenate
    this.whole = null;
  }

  get busy() {
    return this.whole !== null;
  }

  add(message) {
    const part = message.part ?? 1;
    const parts = message.parts ?? 1;
    if (part === 1) {
      this.whole = { ...message };
      for (const name of this.lists) this.whole[name] = [...(message[name] || [])];
    } else if (this.whole && this.whole.snapshot === message.snapshot && this.whole.part === part - 1) {
      for (const name of this.lists) this.whole[name].push(...(message[name] || []));
      this.whole.part = part;
    } else {
      this.whole = null; // a stray part: wait for the next snapshot's first
      return null;
    }
    const last = message.more === undefined ? part >= parts : !message.more;
    if (!last) return null;
    const whole = this.whole;
    this.whole = null;
    return whole;
  }
}

// Versioned deltas, put in order, per key (a call id). Each delta says the version
// it builds on (``base_version``; a board row carries only ``version`` and builds
// on the one before) and the version it makes. Two server threads may publish
// consecutive versions in the opposite order, so a delta that skips ahead waits
// here briefly for the one before it; only if that never comes does the page ask
// for a fresh snapshot. A delta the page already holds is dropped.
export const REORDER_WAIT_MS = 300;

export class DeltaOrder {
  // current(key): the version the page holds for key, or null when it holds none
  // (then every delta for key waits). apply(key, delta): show the delta; after it
  // current(key) is delta.version. resync(): ask the server for a snapshot.
  constructor({ current, apply, resync, waitMs = REORDER_WAIT_MS }) {
    this.current = current;
    this.apply = apply;
    this.resync = resync;
    this.waitMs = waitMs;
    this.early = new Map(); // key -> Map(base version -> delta)
    this.timer = null;
  }

  static base(delta) {
    return delta.base_version ?? delta.version - 1;
  }

  // A delta from the socket: applied now, dropped as stale, or held for its turn.
  offer(key, delta) {
    const have = this.current(key);
    if (have !== null && delta.version <= have) return; // already in the snapshot
    if (have === null || DeltaOrder.base(delta) > have) {
      if (!this.early.has(key)) this.early.set(key, new Map());
      this.early.get(key).set(DeltaOrder.base(delta), delta);
      this.armTimer();
      return;
    }
    this.apply(key, delta);
    this.drain(key);
  }

  // The page moved key on by itself (a new call's whole first row): apply what
  // waited for it.
  drain(key) {
    const waiting = this.early.get(key);
    if (waiting) {
      for (const [base, delta] of [...waiting].sort((a, b) => a[0] - b[0])) {
        const have = this.current(key);
        if (have === null || base > have) break; // still a gap
        waiting.delete(base);
        if (delta.version > have) this.apply(key, delta);
      }
      if (!waiting.size) this.early.delete(key);
    }
    if (!this.early.size) this.stopTimer();
  }

  // After a snapshot: drop what it already holds, apply what now follows on, and
  // forget keys it does not hold (the snapshot is the truth: that call is gone).
  // Anything still ahead of it waits again, and asks again if nothing fills the gap.
  afterSnapshot() {
    for (const key of [...this.early.keys()]) {
      if (this.current(key) === null) this.early.delete(key);
      else this.drain(key);
    }
    if (this.early.size) this.armTimer();
    else this.stopTimer();
  }

  armTimer() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.early.size) this.resync(); // we missed something
    }, this.waitMs);
  }

  stopTimer() {
    clearTimeout(this.timer);
    this.timer = null;
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

// Run ``fn`` at most once per animation frame however often it is asked for: many
// deltas in one frame cost one DOM pass. A page that has not rendered within the
// last frame runs it at once (after the message being handled), instead of waiting
// up to a frame for the next one: a lone delta reaches the DOM in a millisecond,
// and a burst still costs one pass a frame.
const FRAME_MS = 16;

export function frameBatcher(fn) {
  let scheduled = false;
  let last = -Infinity;
  const run = () => {
    scheduled = false;
    last = performance.now();
    fn();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    if (performance.now() - last >= FRAME_MS) queueMicrotask(run);
    else requestAnimationFrame(run);
  };
}
