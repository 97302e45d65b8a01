// Daily usage per metered feature on an account's usage page (usage/admin.py). The server embeds
// every number with json_script; this file only draws: bars for each UTC day's own number, a line
// for what counted against the limit that day (the meter's window), and the current limit.
(function () {
  var source = document.getElementById("tw-usage-data");
  if (!source || typeof Chart === "undefined") return;
  var series = JSON.parse(source.textContent);
  var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function dayLabel(iso) {
    var parts = iso.split("-");
    return parseInt(parts[2], 10) + " " + months[parseInt(parts[1], 10) - 1];
  }
  function flat(value, n) {
    var out = [];
    for (var i = 0; i < n; i++) out.push(value);
    return out;
  }
  document.querySelectorAll("canvas[id^='tw-usage-chart-']").forEach(function (canvas) {
    var s = series[parseInt(canvas.dataset.index, 10)];
    if (!s) return;
    var n = s.days.length;
    var datasets = [
      {
        type: "line", label: "Counted toward the limit (" + s.window + ")", data: s.counted,
        borderColor: "#417690", backgroundColor: "rgba(65,118,144,0.12)", fill: true,
        borderWidth: 2, pointRadius: 0, tension: 0.15, order: 1,
      },
      {
        type: "bar", label: "Per day", data: s.daily, backgroundColor: "rgba(121,174,200,0.55)",
        borderWidth: 0, barPercentage: 1.0, categoryPercentage: 0.9, order: 3,
      },
    ];
    if (s.limit !== null) {
      datasets.push({
        type: "line", label: "Limit", data: flat(s.limit, n), borderColor: "#c0392b",
        borderWidth: 2, borderDash: [6, 4], pointRadius: 0, fill: false, order: 0,
      });
      if (s.soft_limit_at !== null && s.soft_limit_at < s.limit) {
        datasets.push({
          type: "line", label: "Soft threshold", data: flat(s.soft_limit_at, n), borderColor: "#d9822b",
          borderWidth: 1, borderDash: [2, 3], pointRadius: 0, fill: false, order: 0,
        });
      }
    }
    var top = Math.max.apply(null, s.counted.concat(s.daily).concat([s.limit || 0, 1]));
    new Chart(canvas, {
      data: { labels: s.days.map(dayLabel), datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 9, maxRotation: 0, font: { size: 11 } } },
          y: { beginAtZero: true, suggestedMax: Math.ceil(top * 1.08), ticks: { font: { size: 11 }, precision: 0 } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 8, font: { size: 11 } } },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? s.days[items[0].dataIndex] + " (UTC)" : ""; },
              label: function (ctx) {
                return " " + ctx.dataset.label + ": " + ctx.parsed.y.toLocaleString() + (s.unit ? " " + s.unit : "");
              },
            },
          },
        },
      },
    });
    canvas.dataset.drawn = "1";
  });
})();
