// Trend charts on "My plan" (Chart.js from static/vendor); data comes from each canvas's data-series.
document.addEventListener("DOMContentLoaded", function () {
  if (typeof Chart === "undefined") return;
  document.querySelectorAll("canvas.trend").forEach(function (canvas) {
    var series = JSON.parse(canvas.dataset.series);
    var sets = [{ label: "Used", data: series.counted, borderColor: "#1d4ed8", pointRadius: 0 }];
    if (series.limit) {
      sets.push({ label: "Limit", data: series.labels.map(function () { return series.limit; }), borderColor: "#991b1b", borderDash: [4, 4], pointRadius: 0 });
    }
    new Chart(canvas, { type: "line", data: { labels: series.labels, datasets: sets }, options: { animation: false, responsive: true, maintainAspectRatio: false } });
  });
});
