// The call page's transfer dialog and "move into this call": blind or
// consultative transfer (contract §6.7), and inviting the party of another call
// with replacesCallId (§7.11). The outcome follows the action live: call.js
// announces every action ("callbot:action") and the call's state ("callbot:call").

import { el } from "./live.js";
import { isPhone } from "./ringing.js";

// What a transfer's call states mean while its action is pending.
const STATE_WORDS = {
  transferring: ["sent", "Teams is transferring the call…"],
  transfer_accepted: ["accepted", "Accepted by Teams: connecting the transfer target…"],
};

function targetFrom(raw, name) {
  const text = raw.trim();
  const target = isPhone(text) ? { phone: text } : { user_id: text };
  if (name.trim()) target.display_name = name.trim();
  return target;
}

async function otherCalls(callId) {
  const response = await fetch(`/calls/${callId}/others`, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return (await response.json()).calls;
}

function fillCalls(select, calls, empty) {
  const options = calls.map((c) => el("option", { value: String(c.id) }, `Call ${c.id}: ${c.name || "unknown"} (${c.kind})`));
  select.replaceChildren(el("option", { value: "" }, calls.length ? "choose a call…" : empty), ...options);
}

export function setupTransfer({ callId, act, call, roster, phoneRefused = () => "" }) {
  const dialog = document.getElementById("transfer-dialog");
  const form = document.getElementById("transfer-form");
  const opener = document.getElementById("open-transfer");
  if (!dialog || !form || !opener) return;
  const outcome = document.getElementById("transfer-outcome");
  const consult = document.getElementById("transfer-consult");
  const transferee = document.getElementById("transfer-transferee");
  const submit = document.getElementById("transfer-submit");
  let pending = null; // the transfer action this dialog asked for
  // Transfers seen so far: with tasks run in-process the outcome can arrive
  // before the answer that names the action.
  const seen = new Map();

  function show(status, text) {
    outcome.hidden = false;
    outcome.dataset.status = status;
    outcome.textContent = text;
    dialog.dataset.outcome = status;
  }

  function mode() {
    return form.querySelector("input[name=mode]:checked").value;
  }

  function paint() {
    for (const box of form.querySelectorAll("[data-mode]")) box.hidden = box.dataset.mode !== mode();
    document.getElementById("transfer-target").required = mode() === "blind";
    consult.required = mode() === "consultative";
    const group = (call().kind || document.getElementById("call").dataset.kind) !== "peer_to_peer";
    form.querySelector("[data-group-only]").hidden = !group;
    transferee.required = group;
  }

  function fillTransferees() {
    const people = roster().filter((p) => !p.is_bot && p.identity_id);
    const keep = transferee.value;
    transferee.replaceChildren(
      el("option", { value: "" }, people.length ? "choose who…" : "nobody in the roster"),
      ...people.map((p) => el("option", { value: p.id }, p.name)),
    );
    transferee.value = keep;
  }

  async function loadConsultCalls() {
    consult.replaceChildren(el("option", { value: "" }, "loading…"));
    try {
      fillCalls(consult, await otherCalls(callId), "the bot has no other established 1:1 call");
    } catch (error) {
      consult.replaceChildren(el("option", { value: "" }, `could not list calls: ${error.message}`));
    }
  }

  // Said before anyone types a number: phones cannot be reached on this server.
  function tellPhones() {
    const refused = phoneRefused();
    const note = document.getElementById("transfer-phone-refused");
    document.getElementById("transfer-target").placeholder = refused ? "Azure AD object id" : "Azure AD object id or +phone";
    note.textContent = refused;
    note.hidden = !refused;
  }

  opener.addEventListener("click", () => {
    tellPhones();
    paint();
    fillTransferees();
    loadConsultCalls();
    dialog.showModal();
  });
  document.getElementById("transfer-close").addEventListener("click", () => dialog.close());
  form.addEventListener("change", (event) => {
    if (event.target.name === "mode") paint();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = {};
    if (mode() === "consultative") params.consult_call = Number(data.get("consult_call"));
    else params.target = targetFrom(data.get("target") || "", data.get("display_name") || "");
    if (!form.querySelector("[data-group-only]").hidden) params.transferee = data.get("transferee");
    // Said at once, in the words the server would refuse with.
    if (params.target?.phone && phoneRefused()) {
      show("refused", `Not transferred: ${phoneRefused()}`);
      return;
    }
    pending = null;
    show("queued", "Asking Teams to transfer…");
    act("transfer", {
      params,
      button: submit,
      onAnswer(answer) {
        if (answer.type === "action.refused") {
          show("refused", `Not transferred: ${answer.message}`);
          return;
        }
        pending = answer.actions[0]?.id ?? null;
        const words = STATE_WORDS[call().state];
        if (words) show(...words);
        if (seen.has(pending)) follow(seen.get(pending));
      },
    });
  });

  function follow(a) {
    if (a.status === "completed") show("completed", `Transferred to ${a.target}: Teams moved the call and the bot's leg has ended.`);
    else if (a.status === "failed") show("failed", `Transfer to ${a.target} failed: ${a.message || "Teams gave no reason."}`);
    else if (a.status === "sent" && !["accepted", "sent"].includes(outcome.dataset.status)) show("sent", "Sent to Teams, waiting for the transfer target…");
  }

  document.addEventListener("callbot:action", (event) => {
    const a = event.detail;
    if (a.kind !== "transfer") return;
    seen.set(a.id, a);
    if (a.id === pending) follow(a);
  });

  document.addEventListener("callbot:call", (event) => {
    const words = STATE_WORDS[event.detail.state];
    if (pending !== null && words && outcome.dataset.status !== "completed" && outcome.dataset.status !== "failed") {
      show(...words);
    }
    if (dialog.open) paint();
  });

  setupMove({ callId, act });
}

// "Move into this call": invite the party of the bot's other 1:1 call with
// replacesCallId; Teams ends that call once they are here.
function setupMove({ callId, act }) {
  const form = document.getElementById("move-form");
  const select = document.getElementById("move-call");
  if (!form || !select) return;
  let loaded = false;
  async function load() {
    try {
      fillCalls(select, await otherCalls(callId), "no other established 1:1 call");
      loaded = true;
    } catch (error) {
      select.replaceChildren(el("option", { value: "" }, `could not list calls: ${error.message}`));
    }
  }
  select.addEventListener("focus", () => {
    if (!loaded) load();
  });
  select.addEventListener("mousedown", () => {
    if (!loaded) load();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const replaces = Number(new FormData(form).get("replaces_call"));
    act("invite", { params: { replaces_call: replaces }, button: event.submitter });
    loaded = false;
  });
}
