// Sections marked data-live-url refresh themselves: every data-live-seconds seconds (0 means
// not now) the section is fetched again from the same site and replaced, keeping <details>
// that were open. The fresh section says when to look next, so polling stops by itself
// when nothing runs. No other network access.
(function () {
  "use strict";

  function openDetails(section) {
    return Array.prototype.map.call(section.querySelectorAll("details[open] > summary"), function (s) {
      return s.textContent.trim();
    });
  }

  function refresh(section) {
    var keep = openDetails(section);
    fetch(section.dataset.liveUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var box = document.createElement("div");
        box.innerHTML = html.trim();
        var fresh = box.firstElementChild;
        if (!fresh || !fresh.dataset.liveUrl) { return; }
        fresh.querySelectorAll("details > summary").forEach(function (s) {
          if (keep.indexOf(s.textContent.trim()) >= 0) { s.parentElement.open = true; }
        });
        section.replaceWith(fresh);
        schedule(fresh);
      })
      .catch(function () {
        // Signed out or the server is down: look again later, without hammering.
        setTimeout(function () { refresh(section); }, 30000);
      });
  }

  function schedule(section) {
    var seconds = parseFloat(section.dataset.liveSeconds || "0");
    if (seconds > 0) { setTimeout(function () { refresh(section); }, seconds * 1000); }
  }

  document.querySelectorAll("[data-live-url]").forEach(schedule);
})();
