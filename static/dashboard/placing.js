// The board after "Place a call" when the worker had not made the call yet
// (?placing=<action id>): it watches each new outgoing call until one names the
// action, then opens that call's page. With tasks run in-process the place view
// opens the call page itself and this never runs.

const RECENT_MS = 120000;

export function followPlacing(socket) {
  const actionId = Number(new URLSearchParams(location.search).get("placing"));
  if (!actionId) return () => {};
  const note = document.getElementById("placing");
  if (note) {
    note.hidden = false;
    note.textContent = "Placing the call: its page opens as soon as Teams has it…";
  }
  const watched = new Set();

  function watch(row) {
    if (!row || row.direction !== "outgoing" || watched.has(row.id)) return;
    if (row.created_at && Date.now() - Date.parse(row.created_at) > RECENT_MS) return;
    watched.add(row.id);
    socket.send({ type: "subscribe", call: row.id });
  }

  return function onMessage(message) {
    if (message.type === "board.snapshot") for (const row of message.calls || []) watch(row);
    else if (message.type === "calls.delta" && "created_at" in (message.call || {})) watch(message.call);
    else if (message.type === "call.snapshot" || message.type === "call.delta") {
      if ((message.actions || []).some((a) => a.id === actionId)) location.assign(`/calls/${message.call_id}/`);
    }
  };
}
