/* Draws the admin dashboard's charts from the JSON the server rendered into #dashboard-data. */
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var text = data.text;
  var blue = "#3b6fd8", green = "#2e9e5b", orange = "#e08a1e", grey = "#9aa5b1";
  var common = { responsive: true, maintainAspectRatio: false, animation: false };
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) { canvas.chart = new Chart(canvas, config); }
  }

  draw("chart-funnel", {
    type: "bar",
    data: { labels: data.funnel.labels, datasets: [{ data: data.funnel.values, backgroundColor: [grey, blue, orange, green] }] },
    options: Object.assign({}, common, { indexAxis: "y", plugins: { legend: { display: false } } })
  });

  draw("chart-days", {
    type: "bar",
    data: {
      labels: data.days.labels,
      datasets: [
        { label: text.calls, data: data.days.calls, backgroundColor: grey },
        { label: text.answered, data: data.days.answered, backgroundColor: blue },
        { label: text.booked, data: data.days.booked, backgroundColor: green }
      ]
    },
    options: Object.assign({}, common, { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } })
  });

  draw("chart-weeks", {
    type: "line",
    data: {
      labels: data.weeks.labels,
      datasets: [
        { label: text.quality, data: data.weeks.quality, borderColor: green, backgroundColor: green, spanGaps: true },
        { label: text.good, data: data.weeks.good, borderColor: blue, backgroundColor: blue, spanGaps: true }
      ]
    },
    options: Object.assign({}, common, { scales: { y: { min: 0, max: 100 } } })
  });

  draw("chart-leaders", {
    type: "bar",
    data: {
      labels: data.leaders.labels,
      datasets: [
        { label: text.quality, data: data.leaders.quality, backgroundColor: green },
        { label: text.conversion, data: data.leaders.conversion, backgroundColor: orange }
      ]
    },
    options: Object.assign({}, common, { indexAxis: "y", scales: { x: { min: 0, max: 100 } } })
  });
})();
