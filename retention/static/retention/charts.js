// Draws the charts of the managers' pages from the figures each page already holds in a
// <script type="application/json"> block; the table beside each chart shows the same figures,
// so without Chart.js (or without JavaScript) nothing is lost. Each canvas sits in a
// <div class="chart">, whose height (site.css) the chart fills at any width.
//   <canvas data-chart="line" data-source="trend-data">: {"labels": [...], "series": {name: [...]},
//     "names": {name: "in words"}} (names optional)
//     (data-y-label names the y axis; "%" when absent)
//   <canvas data-chart="bar" data-source="sizes-data">: {"labels": [...], "values": [...]}
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Chart === "undefined") return;
  const colours = ["#0b5cad", "#a4161a", "#2b7a0b", "#6a3d9a"];
  const dashes = [[], [6, 4], [2, 3], [10, 3, 2, 3]];  // lines told apart by more than colour
  window.charts = {};
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const source = document.getElementById(canvas.dataset.source);
    if (!source) continue;
    const data = JSON.parse(source.textContent);
    let config;
    if (canvas.dataset.chart === "line") {
      config = {
        type: "line",
        data: {
          labels: data.labels,
          datasets: Object.entries(data.series).map(([name, values], i) => ({
            label: (data.names && data.names[name]) || name.replaceAll("_", " "),
            data: values,
            borderColor: colours[i % colours.length],
            backgroundColor: colours[i % colours.length],
            borderDash: dashes[i % dashes.length],
            spanGaps: true,
          })),
        },
        options: { animation: false, maintainAspectRatio: false,
                   plugins: { legend: { position: "bottom" } },
                   scales: { y: { title: { display: true, text: canvas.dataset.yLabel || "%" } } } },
      };
    } else {
      config = {
        type: "bar",
        data: {
          labels: data.labels.map((name) => name.replaceAll("_", " ")),
          datasets: [{ label: canvas.dataset.label || "", data: data.values,
                       backgroundColor: colours[0] }],
        },
        options: { animation: false, maintainAspectRatio: false,
                   plugins: { legend: { display: false } } },
      };
    }
    window.charts[canvas.id] = new Chart(canvas, config);
  }
  window.trendChart = window.charts["trend-chart"];
});
