// The board's view: filter (kind, state, free text) and sort over the rows the page
// holds, kept in the URL's query so a reload or a shared link shows the same; and
// rows that can be told apart (meetings with the same subject show organiser and
// start). It orders the page's data; board.js puts the visible part in the DOM.

import { clockTime } from "./live.js";

const STATE_GROUPS = {
  ringing: new Set(["incoming"]),
  connected: new Set(["established", "hold"]),
};

// One collator for the page: localeCompare with options builds one per call, which
// adds up when 10,000 rows are sorted by subject.
const COLLATOR = new Intl.Collator(undefined, { sensitivity: "base" });

const SORTS = {
  newest: (a, b) => (b.created_at || "").localeCompare(a.created_at || "") || b.id - a.id,
  longest: (a, b) => (a.established_at || a.created_at || "").localeCompare(b.established_at || b.created_at || "") || a.id - b.id,
  subject: (a, b) => COLLATOR.compare(title(a), title(b)) || a.id - b.id,
  people: (a, b) => (b.participant_count || 0) - (a.participant_count || 0) || b.id - a.id,
  pending: (a, b) => (b.pending_actions || 0) - (a.pending_actions || 0) || b.id - a.id,
};

// What each sort reads of a row: a change elsewhere leaves the order as it was.
const SORT_FIELDS = {
  newest: (d) => d.created_at,
  longest: (d) => d.established_at || d.created_at,
  subject: (d) => title(d),
  people: (d) => d.participant_count || 0,
  pending: (d) => d.pending_actions || 0,
};

export function title(d) {
  return d.subject || d.caller || `${d.direction} call`;
}

export class BoardView {
  constructor(form) {
    this.form = form;
    this.fields = {
      q: form.elements.namedItem("q"),
      kind: form.elements.namedItem("kind"),
      state: form.elements.namedItem("state"),
      sort: form.elements.namedItem("sort"),
    };
    const query = new URLSearchParams(location.search);
    for (const [name, field] of Object.entries(this.fields)) {
      const value = query.get(name);
      if (value !== null && (field.tagName !== "SELECT" || [...field.options].some((o) => o.value === value))) field.value = value;
    }
    this.onChange = () => {};
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("input", () => this.changed());
    form.addEventListener("change", () => this.changed());
  }

  changed() {
    const query = new URLSearchParams(location.search);
    for (const [name, field] of Object.entries(this.fields)) {
      const value = field.value.trim();
      const initial = name === "sort" ? "newest" : "";
      if (value && value !== initial) query.set(name, value);
      else query.delete(name);
    }
    const search = query.toString();
    history.replaceState(null, "", search ? `?${search}` : location.pathname);
    this.onChange();
  }

  matches(d) {
    const kind = this.fields.kind.value;
    if (kind && d.kind !== kind) return false;
    const state = this.fields.state.value;
    if (state === "other" && (STATE_GROUPS.ringing.has(d.state) || STATE_GROUPS.connected.has(d.state))) return false;
    if (STATE_GROUPS[state] && !STATE_GROUPS[state].has(d.state)) return false;
    const q = this.fields.q.value.trim().toLowerCase();
    if (!q) return true;
    return [d.subject, d.caller, d.organizer, d.graph_id, d.state, d.kind, (d.sharing || []).join(" ")].join(" ").toLowerCase().includes(q);
  }

  // Where a row stands in the view: whether it is shown, what its sort reads and
  // what tells meetings apart. Rows whose key did not change keep their place, so
  // a mute in one call costs one row, not a sort of the board.
  key(d) {
    const sort = SORT_FIELDS[this.fields.sort.value] || SORT_FIELDS.newest;
    return `${this.matches(d) ? 1 : 0}\u0000${sort(d)}\u0000${d.kind}\u0000${d.subject || ""}`;
  }

  // The rows shown, in order, and how many meetings share each subject (for
  // markTwin).
  arrange(entries) {
    const compare = SORTS[this.fields.sort.value] || SORTS.newest;
    const subjects = new Map();
    const list = [];
    for (const entry of entries) {
      const data = entry.data;
      if (data.kind === "meeting" && data.subject) {
        const twinKey = data.subject.trim().toLowerCase();
        subjects.set(twinKey, (subjects.get(twinKey) || 0) + 1);
      }
      entry.viewKey = this.key(data);
      if (this.matches(data)) list.push(entry);
    }
    list.sort((a, b) => compare(a.data, b.data));
    return { list, subjects };
  }

  markTwin(entry, subjects) {
    const d = entry.data;
    const twin = d.kind === "meeting" && d.subject && subjects.get(d.subject.trim().toLowerCase()) > 1;
    let sub = entry.sub;
    if (!twin) {
      if (sub) sub.hidden = true;
      return;
    }
    if (!sub) {
      sub = document.createElement("span");
      sub.className = "twin";
      entry.link.after(sub);
      entry.sub = sub;
    }
    sub.hidden = false;
    const start = d.meeting_starts_at || d.created_at;
    const organiser = d.organizer ? `organiser ${d.organizer}` : "organiser unknown";
    sub.textContent = `${organiser} · ${d.meeting_starts_at ? "starts" : "joined"} ${clockTime(start)}`;
  }
}
