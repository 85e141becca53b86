// The home screen's search and filters, in the page (no round trip). The form still works
// without script: it submits ?q=&f= and the server filters the same way.
"use strict";

(function () {
  var chosen = "";

  function apply() {
    var q = document.getElementById("q");
    var query = q ? q.value.trim().toLowerCase() : "";
    var shown = 0, total = 0;
    document.querySelectorAll("li[data-s]").forEach(function (li) {
      var ok = (!query || li.getAttribute("data-s").indexOf(query) !== -1) &&
        (!chosen || (" " + li.getAttribute("data-f") + " ").indexOf(" " + chosen + " ") !== -1);
      li.hidden = !ok;
      if (!li.closest("#problems")) { total += 1; if (ok) { shown += 1; } }
    });
    document.querySelectorAll("details.nodegroup").forEach(function (d) {
      var any = !!d.querySelector("li[data-s]:not([hidden])");
      d.hidden = !any && (query || chosen) !== "";
      // A large cluster's groups start closed; a search opens those with a match.
      if ((query || chosen) && any) { d.open = true; }
    });
    var out = document.getElementById("shown");
    if (out) { out.textContent = (query || chosen) ? shown + " of " + total + " shown" : ""; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("find");
    if (!form) { return; }
    var on = form.querySelector(".chipbtn.on");
    chosen = on ? on.getAttribute("data-filter") : "";
    document.getElementById("q").addEventListener("input", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
    form.querySelectorAll(".chipbtn").forEach(function (b) {
      b.addEventListener("click", function (e) {
        e.preventDefault();
        chosen = b.getAttribute("data-filter");
        form.querySelectorAll(".chipbtn").forEach(function (o) {
          o.classList.toggle("on", o === b);
          o.setAttribute("aria-pressed", o === b ? "true" : "false");
        });
        apply();
      });
    });
    // A live update replaced a block: filter the fresh rows the same way.
    document.addEventListener("nestctl:replaced", apply);
    apply();
  });
})();
