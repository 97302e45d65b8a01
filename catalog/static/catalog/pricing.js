// Monthly/annual switch of the pricing table. Without JS the monthly prices show.
(function () {
  "use strict";
  function setInterval_(table, interval) {
    table.setAttribute("data-interval", interval);
    table.querySelectorAll(".tw-toggle-btn").forEach(function (btn) {
      var on = btn.getAttribute("data-interval") === interval;
      btn.classList.toggle("is-active", on);
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  document.addEventListener("click", function (event) {
    var btn = event.target.closest(".tw-toggle-btn");
    if (!btn) return;
    var table = btn.closest(".tw-pricing");
    if (table) setInterval_(table, btn.getAttribute("data-interval"));
  });
})();
