// The history shows times in the viewer's time zone: remember the browser's in a
// cookie the server reads on the next request (the form's field wins over it).
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  var current = document.cookie.split("; ").find(function (c) { return c.indexOf("tz=") === 0; });
  if (current === "tz=" + encodeURIComponent(zone)) return;
  document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  var field = document.querySelector('.history-filters input[name="tz"]');
  // Reload once so this page shows the browser's zone too (never in a loop, even
  // where cookies are refused).
  if (field && !field.value && !sessionStorage.getItem("tz-reloaded")) {
    sessionStorage.setItem("tz-reloaded", "1");
    location.reload();
  }
})();
