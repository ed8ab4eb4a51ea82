// The periodic-task admin form (django-celery-beat): show the chosen crontab in
// words under the field, as the package's inline script did (moved here for the
// Content-Security-Policy). The readable texts come from a json_script block.
"use strict";
{
  const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const select = document.getElementById("id_crontab");
  const help = document.querySelector(".field-crontab .help");
  const original = help ? help.textContent : "";
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) translation.style.display = "none";

  function showTranslation() {
    if (!help || !select) return;
    help.replaceChildren(original);
    const words = readable[select.value];
    if (words) help.append(document.createElement("br"), `Translation: ${words}`);
  }

  if (select) select.addEventListener("change", showTranslation);
}
