// Refreshes an admin page while work is in flight (a running rollout, a node its agent has yet to
// report on, open agent commands). admin/base_site.html loads this file only on such pages, with
// data-seconds (ADMIN_REFRESH_SECONDS). It waits while the tab is hidden, and stops for good once
// the person on the page has typed or ticked something, so no selection or input is lost.
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = Number(script && script.dataset.seconds) || 5;
  var touched = false;
  function stop() {
    touched = true;
    var note = document.getElementById("nf-refresh");
    if (note) note.textContent = "Stopped refreshing (you changed something on the page): reload to see the latest.";
  }
  document.addEventListener("input", stop, true);
  document.addEventListener("change", stop, true);
  function tick() {
    if (touched) return;
    if (document.hidden) {
      window.setTimeout(tick, seconds * 1000);
      return;
    }
    window.location.reload();
  }
  window.setTimeout(tick, seconds * 1000);
})();
