// Honest controls: a control Graph does not allow on this call is shown disabled,
// with the server's one-line reason beside it (visible), in its tooltip, and tied
// to it for screen readers (aria-describedby).
//
// Generic over data-kind: every element with data-kind="<action kind>" under the
// given root is a control of that kind, whoever added it. The server sends the
// reasons: each call's codes (snapshot and delta: call.unavailable = {kind: code})
// and, once per socket, every sentence (hello: reasons, keyed by "<code>.<kind>"
// where the sentence names the kind's act, else by the code; given to
// setReasons); nothing here knows a rule of its own. Call applyOffers after every paint, so a painter that
// re-enables its buttons cannot bring a refused one back.
//
// Painters may set `disabled` by their own logic; call applyOffers both before
// them (so a control offered again is handed back enabled) and after them (so a
// refused one stays disabled whatever they decided).
//
// Where the reason is shown: right after the control, unless the control sits in a
// container marked data-reasons (a panel of controls, or a roster of a thousand
// rows each with a Mute button): then the reason is one line in that container's
// list ([data-reasons-list]), once per kind, led by the control's own words.

let serial = 0;
let sentences = {};

// The server's hello: every reason code's one sentence.
export function setReasons(reasons = {}) {
  sentences = reasons;
}

// The sentence for `kind` not offered for reason `code` (the code itself if the
// hello did not word it).
export function reasonText(kind, code) {
  return sentences[`${code}.${kind}`] || sentences[code] || code;
}

function reasonId(kind, scope) {
  if (!scope.dataset.reasonScope) scope.dataset.reasonScope = String((serial += 1));
  return `not-offered-${scope.dataset.reasonScope}-${kind}`;
}

function sharedLine(list, kind, reason, label) {
  let line = list.querySelector(`[data-reason-for="${CSS.escape(kind)}"]`);
  if (!line) {
    line = document.createElement("li");
    line.dataset.reasonFor = kind;
    line.className = "why";
    line.id = reasonId(kind, list);
    list.append(line);
  }
  const text = `${label}: ${reason}`;
  if (line.textContent !== text) line.textContent = text;
  return line;
}

function inlineLine(control, kind, reason) {
  let line = control.nextElementSibling;
  if (!line || line.dataset.reasonFor !== kind) {
    line = document.createElement("span");
    line.dataset.reasonFor = kind;
    line.className = "why";
    line.id = reasonId(kind, control);
    control.after(line);
  }
  if (line.textContent !== reason) line.textContent = reason;
  return line;
}

function clearControl(control) {
  if (control.dataset.notOffered !== "true") return;
  delete control.dataset.notOffered;
  control.disabled = false;
  control.removeAttribute("aria-describedby");
  if (control.dataset.titleBefore !== undefined) {
    control.title = control.dataset.titleBefore;
    delete control.dataset.titleBefore;
  }
  const next = control.nextElementSibling;
  if (next && next.classList.contains("why") && next.dataset.reasonFor === control.dataset.kind) next.remove();
}

// The controls of `root` that are not offered become disabled with their reason;
// ones offered again are given back. `labels` words a kind for the shared lines.
export function applyOffers(root, unavailable = {}, labels = {}) {
  for (const control of root.querySelectorAll("[data-kind]")) {
    // A form names its kind for its submit button, which is the control.
    if (control.tagName === "FORM") continue;
    const kind = control.dataset.kind;
    const code = unavailable[kind];
    if (!code) {
      clearControl(control);
      continue;
    }
    const reason = reasonText(kind, code);
    if (control.dataset.titleBefore === undefined) control.dataset.titleBefore = control.title || "";
    control.dataset.notOffered = "true";
    control.disabled = true;
    control.title = reason;
    const container = control.closest("[data-reasons]");
    let line;
    if (container) {
      // A hidden control (the bot's unmute while it is not muted) gets no line of
      // its own; the visible one of the pair says it.
      if (control.hidden) {
        control.removeAttribute("aria-describedby");
        continue;
      }
      const list = container.querySelector("[data-reasons-list]") || container;
      const label = control.getAttribute("aria-label") || control.textContent.trim() || labels[kind] || kind;
      line = sharedLine(list, kind, reason, label);
      list.hidden = false;
    } else {
      line = inlineLine(control, kind, reason);
      line.hidden = control.hidden;
    }
    control.setAttribute("aria-describedby", line.id);
  }
}

// Drop a shared list's lines for kinds offered again (a peer-to-peer call that
// became a group call); the list hides when empty.
export function pruneReasons(list, unavailable = {}) {
  for (const line of [...list.children]) if (!unavailable[line.dataset.reasonFor]) line.remove();
  list.hidden = list.childElementCount === 0;
}
