// The place-a-call form: show the field for the kind of target chosen.

const form = document.getElementById("place-form");

function show() {
  const kind = form.querySelector("input[name=target_kind]:checked")?.value || "user";
  for (const box of form.querySelectorAll("[data-target-kind]")) {
    const on = box.dataset.targetKind === kind;
    box.hidden = !on;
    for (const input of box.querySelectorAll("input")) input.required = on;
  }
}

if (form) {
  form.addEventListener("change", show);
  show();
}
