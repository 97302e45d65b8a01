// Usage charts on the account page: counted usage per day against the limit (data from json_script).
(function () {
  var node = document.getElementById("usage-data");
  if (!node || !window.Chart) return;
  var series = JSON.parse(node.textContent);
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var s = series[Number(canvas.dataset.chart)];
    var sets = [{ label: s.name, data: s.counted, borderColor: "#264b5d", pointRadius: 0 }];
    if (s.limit) sets.push({ label: "Limit", data: s.labels.map(function () { return s.limit; }), borderColor: "#b3261e", borderDash: [4, 4], pointRadius: 0 });
    new window.Chart(canvas, { type: "line", data: { labels: s.labels, datasets: sets }, options: { animation: false, responsive: true } });
  });
})();
// Proposal builder: insert a playbook's ready answer into the introduction.
document.querySelectorAll(".cs-insert").forEach(function (button) {
  button.addEventListener("click", function () {
    var intro = document.getElementById("id_intro");
    if (!intro) return;
    intro.value = (intro.value ? intro.value + "\n\n" : "") + button.dataset.answer;
    intro.focus();
  });
});
