// Draws the trend chart from the figures the page already holds (the table shows them too).
// Without Chart.js (not installed, or JavaScript off) the table alone remains.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("trend-chart");
  const source = document.getElementById("trend-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const trend = JSON.parse(source.textContent);
  const colours = ["#0b5cad", "#a4161a", "#2b7a0b", "#6a3d9a"];
  const dashes = [[], [6, 4], [2, 3], [10, 3, 2, 3]];  // told apart by more than colour
  window.trendChart = new Chart(canvas, {
    type: "line",
    data: {
      labels: trend.labels,
      datasets: Object.entries(trend.series).map(([name, values], i) => ({
        label: name.replaceAll("_", " "),
        data: values,
        borderColor: colours[i % colours.length],
        backgroundColor: colours[i % colours.length],
        borderDash: dashes[i % dashes.length],
        spanGaps: true,
      })),
    },
    options: { scales: { y: { title: { display: true, text: "%" } } }, animation: false },
  });
});
