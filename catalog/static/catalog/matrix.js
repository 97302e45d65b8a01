// Entitlement matrix: a cell's limit and enforcement only matter while the feature is included.
(function () {
  "use strict";
  function sync(cell) {
    var on = cell.querySelector('input[type="checkbox"]');
    if (!on) return;
    cell.querySelectorAll(".tw-limit, select").forEach(function (el) { el.disabled = !on.checked; });
    cell.classList.toggle("is-off", !on.checked);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".tw-cell").forEach(function (cell) {
      sync(cell);
      cell.addEventListener("change", function () { sync(cell); });
    });
    var form = document.querySelector(".tw-matrix") && document.querySelector(".tw-matrix").closest("form");
    if (form) form.addEventListener("submit", function () {
      // Disabled inputs are not posted; re-enable so an "off" cell keeps its limit for later.
      form.querySelectorAll(".tw-limit, select").forEach(function (el) { el.disabled = false; });
    });
  });
})();
