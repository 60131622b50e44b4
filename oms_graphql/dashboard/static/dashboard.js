// The dashboard: asks /graphql for the reports with the page's token and draws them.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || sessionStorage.getItem("omsToken") || "";
  if (params.has("token")) {
    sessionStorage.setItem("omsToken", token);
    history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
  }
  const status = document.getElementById("status");
  const day = (d) => d.toISOString().slice(0, 10);
  const today = new Date();
  document.getElementById("to").value = params.get("to") || day(new Date(today.getTime() + 86400000));
  document.getElementById("from").value = params.get("from") || day(new Date(today.getTime() - 90 * 86400000));

  async function graphql(query, variables) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    const body = await response.json();
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    return body.data.reports;
  }

  const QUERY = `query($from: DateTime!, $to: DateTime!) { reports {
    salesTrend(from: $from, to: $to, interval: DAY) { period revenue { amount currency } orders }
    fulfillmentKpis(from: $from, to: $to) { completionRate cancellationRate returnRate lateShipmentRate splitShipmentRate }
    demandForecast(from: $from, to: $to, top: 1, horizonDays: 28) { sku method mase points { date quantity lower upper } }
    topProducts(from: $from, to: $to, by: UNITS, limit: 8) { top { sku units change } rising { sku units change } }
    customerSegments(from: $from, to: $to) { name customers repeatRate } } }`;

  const percent = (change) => (change == null ? "new" : `${change >= 0 ? "+" : ""}${Math.round(change * 100)}%`);

  function showTopProducts(products) {
    OmsCharts.barChart(document.getElementById("top-chart"),
      products.top.map((p) => ({ label: p.sku.length > 12 ? `…${p.sku.slice(-11)}` : p.sku, value: p.units })));
    const list = document.getElementById("rising-list");
    list.textContent = "";
    const rows = products.rising.length ? products.rising : [null];
    for (const p of rows) {
      const item = document.createElement("li");
      item.textContent = p ? `${p.sku}: ${p.units} units (${percent(p.change)})` : "Nothing rising in this window.";
      list.appendChild(item);
    }
  }

  async function show() {
    const from = document.getElementById("from").value;
    const to = document.getElementById("to").value;
    status.className = "";
    status.textContent = "Loading…";
    try {
      const r = await graphql(QUERY, { from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` });
      const byDay = new Map();
      for (const p of r.salesTrend) byDay.set(p.period, (byDay.get(p.period) || 0) + Number(p.revenue.amount));
      OmsCharts.lineChart(document.getElementById("sales-chart"),
        [...byDay].map(([label, value]) => ({ label: label.slice(5), value })));
      const forecast = r.demandForecast[0];
      document.getElementById("forecast-sku").textContent = forecast
        ? `${forecast.sku} (${forecast.method}${forecast.mase == null ? "" : `, MASE ${forecast.mase.toFixed(2)}`})` : "";
      if (forecast) {
        OmsCharts.lineChart(document.getElementById("forecast-chart"), forecast.points.map((p) => (
          { label: p.date.slice(5), value: p.quantity, lower: p.lower, upper: p.upper })));
      } else {
        OmsCharts.empty(document.getElementById("forecast-chart"), "No sales to forecast from.");
      }
      const k = r.fulfillmentKpis[0] || {};
      const rates = [["complete", k.completionRate], ["cancel", k.cancellationRate], ["return", k.returnRate],
        ["late", k.lateShipmentRate], ["split", k.splitShipmentRate]];
      OmsCharts.barChart(document.getElementById("kpi-chart"),
        rates.filter(([, v]) => v != null).map(([label, v], i) => ({ label, value: v, alt: i > 0 })), 1);
      showTopProducts(r.topProducts);
      OmsCharts.barChart(document.getElementById("segment-chart"),
        r.customerSegments.map((s) => ({ label: s.name.replace("_", " ").toLowerCase(), value: s.customers })));
      status.textContent = `Reports from ${from} to ${to}.`;
      document.body.dataset.ready = "true";
    } catch (error) {
      status.className = "error";
      status.textContent = `Could not load the reports: ${error.message}`;
      document.body.dataset.ready = "error";
    }
  }

  document.getElementById("window").addEventListener("submit", (event) => { event.preventDefault(); show(); });
  show();
})();
