// Keyboard shortcuts of the board and the call page, listed under "?" (the dialog
// in base.html). Keys are left alone while someone types in a field, and with
// Ctrl, Alt or Meta held (the browser's own shortcuts).
//
// Acts that need a button press the page's own button (Answer buttons carry
// data-kind="answer", Mute buttons data-act="mute_participant"), so a shortcut
// does exactly what a click does, confirmations included.

const help = document.getElementById("keys-help");
const onBoard = Boolean(document.getElementById("board-rows"));
const filter = document.getElementById("board-filter") || document.getElementById("roster-filter");
let selected = null;

function rows() {
  return [...document.querySelectorAll("#roster-rows [data-participant-id]")].filter((row) => !row.hidden);
}

// The board holds only the rows near the viewport (board.js): it steps through its
// own list and marks the row it picked.
function current() {
  return onBoard ? document.querySelector("#board-rows tr.selected") : selected;
}

function select(row) {
  if (onBoard) {
    document.dispatchEvent(new CustomEvent("board:select", { detail: { step: 0 } }));
    return;
  }
  if (selected) {
    selected.classList.remove("selected");
    selected.removeAttribute("aria-selected");
  }
  selected = row;
  if (!row) return;
  row.classList.add("selected");
  row.setAttribute("aria-selected", "true");
  row.scrollIntoView({ block: "nearest" });
}

function move(step) {
  if (onBoard) {
    document.dispatchEvent(new CustomEvent("board:select", { detail: { step } }));
    return;
  }
  const all = rows();
  if (!all.length) return;
  const at = all.indexOf(selected);
  const next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
  select(all[next]);
}

function press(button) {
  if (button && !button.disabled && !button.hidden) button.click();
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
}

function toggleHelp() {
  if (help.open) help.close();
  else help.showModal();
}

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-keys-help]")) toggleHelp();
});

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") {
    if (typing(event.target)) event.target.blur();
    else select(null);
    return; // the dialog closes itself on Escape
  }
  if (typing(event.target) || help.open) return;
  const key = event.key;
  if (key === "?") toggleHelp();
  else if (key === "/" && filter) filter.focus();
  else if (key === "j") move(1);
  else if (key === "k") move(-1);
  // Enter on a focused link or button is that element's own.
  else if (key === "Enter" && current() && onBoard && !event.target.closest("a, button")) current().querySelector("a")?.click();
  else if (key === "a") press((onBoard ? current() : document)?.querySelector('button[data-kind="answer"]'));
  else if (key === "m" && selected && !onBoard) press(selected.querySelector('button[data-act="mute_participant"]'));
  else if (key === "b" && !onBoard) location.assign("/");
  else return;
  event.preventDefault();
});
