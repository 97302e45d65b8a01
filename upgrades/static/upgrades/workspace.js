// One small doughnut: share of MRR by tier. Amounts arrive as integer minor units and labels
// pre-formatted by the server, so no money is computed in the browser.
(function () {
  var source = document.getElementById("tw-mrr-data");
  var canvas = document.getElementById("tw-mrr-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var palette = ["#417690", "#79aec8", "#2f9e6e", "#d9822b", "#8e6bbf", "#c0392b", "#999999"];
  new Chart(canvas, {
    type: "doughnut",
    data: {
      labels: data.labels,
      datasets: [{ data: data.amounts, backgroundColor: data.labels.map(function (_, i) { return palette[i % palette.length]; }) }],
    },
    options: {
      responsive: false,
      animation: false,
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 10, font: { size: 11 } } },
        tooltip: { callbacks: { label: function (ctx) { return " " + data.labels[ctx.dataIndex] + ": " + data.display[ctx.dataIndex]; } } },
      },
    },
  });
})();
