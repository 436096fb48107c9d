// Draws a campaign's charts over time from the JSON the page embeds (Chart.js, vendored).
(function () {
  "use strict";
  const node = document.getElementById("chart-data");
  if (!node || typeof Chart === "undefined") { return; }
  const data = JSON.parse(node.textContent);
  const palette = ["#2f5bd3", "#c4320a", "#067647", "#b54708", "#7a5af8", "#0e9384", "#dd2590", "#475467"];
  const color = (i) => palette[i % palette.length];

  // vertical lines where a model version was promoted or rolled back
  const markers = {
    id: "markers",
    afterDatasetsDraw(chart) {
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.font = "11px system-ui";
      for (const m of data.markers) {
        const x = scales.x.getPixelForValue(m.index);
        ctx.strokeStyle = m.label.startsWith("rollback") ? "#c4320a" : "#067647";
        ctx.setLineDash([4, 3]);
        ctx.beginPath(); ctx.moveTo(x, chartArea.top); ctx.lineTo(x, chartArea.bottom); ctx.stroke();
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(m.label, x + 3, chartArea.top + 10);
      }
      ctx.restore();
    },
  };
  const percent = { ticks: { callback: (v) => (100 * v).toFixed(0) + "%" } };
  const base = (extra) => ({
    animation: false,
    responsive: true,
    spanGaps: true,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { labels: { boxWidth: 12, filter: (item) => !item.text.endsWith(" band") } } },
    scales: { y: { min: 0, ...percent, ...extra } },
  });
  const line = (v, i, key, extra) => ({
    label: v.label, data: v[key], borderColor: color(i), backgroundColor: color(i),
    pointRadius: 0, borderWidth: 2, ...extra,
  });

  new Chart(document.getElementById("chart-share"), {
    type: "line",
    data: { labels: data.labels, datasets: data.variants.map((v, i) => line(v, i, "share")) },
    options: base({ max: 1 }),
    plugins: [markers],
  });
  new Chart(document.getElementById("chart-pbest"), {
    type: "line",
    data: { labels: data.labels, datasets: data.variants.map((v, i) => line(v, i, "p_best")) },
    options: base({ max: 1 }),
    plugins: [markers],
  });
  const rate = [];
  data.variants.forEach((v, i) => {
    rate.push(line(v, i, "high", { label: v.label + " band", borderWidth: 0, fill: false }));
    rate.push(line(v, i, "low", {
      label: v.label + " band", borderWidth: 0, fill: "-1", backgroundColor: color(i) + "22",
    }));
    rate.push(line(v, i, "rate"));
  });
  new Chart(document.getElementById("chart-rate"), {
    type: "line",
    data: { labels: data.labels, datasets: rate },
    options: base({}),
    plugins: [markers],
  });
})();
