// nestctl serve: live updates and task following for the server-rendered pages.
// The pages work without this script; it only saves reloading them.
"use strict";

(function () {
  var csrf = function () {
    var el = document.querySelector('input[name="csrf"]');
    return el ? el.value : "";
  };

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }

  // Replace each [data-live] block with the same block of a freshly rendered page.
  function refresh(selector) {
    return fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector(selector), old = document.querySelector(selector);
        if (fresh && old && !old.contains(document.activeElement)) {
          old.replaceWith(fresh);
          watch(fresh);
          // Blocks that sum up live ones (the home screen's pinned problems) follow them.
          document.querySelectorAll("[data-follows-live]").forEach(function (o) {
            var f = o.id && doc.getElementById(o.id);
            if (f && !o.contains(document.activeElement)) { o.replaceWith(f); }
          });
          document.dispatchEvent(new CustomEvent("nestctl:replaced"));
        }
      });
  }

  function selectorFor(el) {
    return '[data-live="' + el.getAttribute("data-live").replace(/"/g, '\\"') + '"]';
  }

  // Long-poll /changes until the data behind a block is newer than what the page shows.
  function watch(el) {
    if (el.dataset.watching) { return; }
    el.dataset.watching = "1";
    var key = el.getAttribute("data-live"), sel = selectorFor(el);
    (async function loop() {
      var failures = 0;
      while (document.contains(el)) {
        try {
          var v = el.getAttribute("data-v") || "0";
          var res = await getJSON("/changes?key=" + encodeURIComponent(key) + "&v=" + encodeURIComponent(v));
          failures = 0;
          if (String(res.v) !== v) { await refresh(sel); return; }
        } catch (e) {
          failures += 1;
          await sleep(Math.min(30000, 1000 * failures));
        }
      }
    })();
  }

  // Follow a task to its end, then show its exit status and log tail.
  async function follow(box) {
    var url = box.getAttribute("data-task");
    var status = document.getElementById("task-status"), log = document.getElementById("task-log");
    while (true) {
      var res;
      try { res = await getJSON(url); } catch (e) { await sleep(2000); continue; }
      if (res.error) { status.textContent = res.error; status.className = "error"; return; }
      if (!res.running) {
        status.textContent = "Ended: " + res.exitstatus;
        status.className = res.ok ? "ok" : "error";
        log.textContent = (res.log_tail || []).join("\n");
        box.setAttribute("data-running", "0");
        return;
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(watch);
    var task = document.getElementById("task");
    if (task && task.getAttribute("data-running") === "1") { follow(task); }
    void csrf;
  });
})();
