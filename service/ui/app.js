// vecdial explorer: pick a collection, set a budget, search, read the explain, see the tradeoff.
// Talks to the same /v1 routes as any client; no outside assets, so it works offline.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, sweep: null };
const KNOBS = { exact: [], dense: ["dim", "probe"], binary: ["rescore", "probe"], rabitq: ["rescore", "ef", "probe"], sparse: ["active", "rescore"], funnel: ["stages", "probe"], auto: ["target"] };

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

async function call(path, body) {
  const response = await fetch(path, body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || (data.detail && JSON.stringify(data.detail)) || response.status + " " + response.statusText);
  return data;
}

function budget() {
  const mode = $("mode").value;
  const probe = Number($("probe").value);
  const probed = probe > 0 ? ",probe=" + probe : "";
  if (mode === "exact") return "exact";
  if (mode === "dense") return "dense:dim=" + $("dim").value + probed;
  if (mode === "binary") return "binary:rescore=" + $("rescore").value + probed;
  if (mode === "rabitq") return "rabitq:rescore=" + $("rescore").value + (Number($("ef").value) > 0 ? ",ef=" + $("ef").value : probed);  // ef or probe, not both
  if (mode === "sparse") return "sparse:active=" + $("active").value + ",rescore=" + $("rescore").value;
  if (mode === "funnel") return "funnel:" + $("stages").value.trim() + probed;
  return "auto:target_recall=" + $("target").value;
}

function refreshControls() {
  const mode = $("mode").value;
  for (const label of document.querySelectorAll("[data-knob]")) {
    const knob = label.dataset.knob;
    const partitioned = knob !== "probe" || (state.info && state.info.partitions > 0);
    const graphed = knob !== "ef" || (state.info && state.info.modes.some((m) => m.mode === "rabitq" && m.knobs.ef));
    label.hidden = !(KNOBS[mode].includes(knob) && partitioned && graphed);
  }
  for (const output of document.querySelectorAll("output")) output.textContent = $(output.htmlFor).value;
  $("budget").textContent = "budget: " + budget();
  drawPlot();
}

async function loadCollections() {
  try {
    const names = (await call("/v1/collections")).map((c) => c.name);
    $("collection").innerHTML = names.map((n) => `<option>${escapeHtml(n)}</option>`).join("");
    if (names.length) await loadCollection();
    else showError("this server has no collections yet: build one (vecdial build)");
  } catch (error) {
    showError(error.message);
  }
}

async function loadCollection() {
  showError("");
  const name = $("collection").value;
  state.info = await call("/v1/collections/" + encodeURIComponent(name));
  const info = state.info;
  $("dim").max = info.dim;
  $("probe").max = info.partitions || 0;
  const sparse = info.modes.find((m) => m.mode === "sparse");
  $("mode").querySelector("[value=sparse]").disabled = !sparse;
  $("mode").querySelector("[value=rabitq]").disabled = !info.modes.some((m) => m.mode === "rabitq");
  if (sparse) $("active").max = sparse.knobs.active[1];
  $("steering").hidden = $("features").hidden = !sparse;
  if (sparse) await browseFeatures();
  $("query").placeholder = info.text_queries ? "Type text to search for, or paste a vector as a JSON list of numbers" : `Paste a vector: a JSON list of ${info.dim} numbers`;
  const sweep = await call("/v1/collections/" + encodeURIComponent(name) + "/sweep");
  state.sweep = sweep.points.length ? sweep : null;
  $("mode").querySelector("[value=auto]").disabled = !state.sweep;
  $("calibrated").textContent = state.sweep ? "Calibrated on " + sweep.queries + ". Blue: the Pareto front; red ring: the budget of the last search." : "No sweep yet: run `vecdial sweep -c " + name + "` to see the tradeoff and use auto.";
  refreshControls();
  // Last, once the sweep and the features are in: the page is ready when it says what it serves.
  $("about").textContent = `${info.size.toLocaleString()} vectors, ${info.dim} dims` + (info.partitions ? `, ${info.partitions} partitions` : "") + (info.text_queries ? ", text queries" : ", vector queries");
}

async function search() {
  showError("");
  const text = $("query").value.trim();
  if (!text) return showError("type a text or paste a vector first");
  const body = { k: Number($("k").value), budget: budget(), with_text: true };
  if (text.startsWith("[")) {
    try {
      body.vector = JSON.parse(text);
    } catch (error) {
      return showError("the vector is not a JSON list of numbers: " + error.message);
    }
  } else body.text = text;
  if (!$("steering").hidden) {
    const steer = $("steer").value.trim();
    try {
      if (steer) body.steer = JSON.parse(steer);
    } catch (error) {
      return showError('steer is not a JSON object like {"json": 0.5}: ' + error.message);
    }
    if ($("explain-features").checked) body.explain_features = true;
  }
  try {
    const answer = await call("/v1/collections/" + encodeURIComponent($("collection").value) + "/search", body);
    showHits(answer.hits);
    showExplain(answer.explain);
  } catch (error) {
    showError(error.message);
  }
}

const SHOWN_CHARS = 240; // a hit's text beyond this folds behind "more"

function showHits(hits) {
  $("hits").querySelector("tbody").innerHTML = hits
    .map((h, i) => `<tr><td class="num">${i + 1}</td><td>${escapeHtml(String(h.id))}</td><td class="num">${h.score.toFixed(4)}</td><td>${hitText(h.text || "")}${sharedFeatures(h)}</td></tr>`)
    .join("");
}

function hitText(text) {
  if (text.length <= SHOWN_CHARS) return escapeHtml(text);
  const cut = text.lastIndexOf(" ", SHOWN_CHARS) > SHOWN_CHARS / 2 ? text.lastIndexOf(" ", SHOWN_CHARS) : SHOWN_CHARS;
  return `<details class="text"><summary>${escapeHtml(text.slice(0, cut))}…</summary>${escapeHtml(text.slice(cut))}</details>`;
}

function sharedFeatures(hit) {
  if (!hit.features) return "";
  const listed = hit.features.map((f) => `<span title="contribution ${f.contribution}">${f.feature} ${escapeHtml(f.label)}</span>`).join("");
  return `<div class="shared">${listed || "no shared feature"}</div>`;
}

async function browseFeatures() {
  const q = $("feature-query").value.trim();
  const path = "/v1/collections/" + encodeURIComponent($("collection").value) + "/features?limit=30" + (q ? "&q=" + encodeURIComponent(q) : "");
  const listed = (await call(path)).features;
  $("feature-list").querySelector("tbody").innerHTML = listed.length
    ? listed
        .map((f) => {
          const docs = f.documents.slice(0, 2).map((d) => escapeHtml(String(d.id))).join("; ");
          return `<tr><td class="num">${f.id}</td><td class="num">${(100 * f.frequency).toFixed(1)}%</td><td>${escapeHtml(f.label)}</td><td>${docs}</td><td><button data-steer="${f.id}">steer</button></td></tr>`;
        })
        .join("")
    : `<tr><td colspan="5">no feature's label matches ${escapeHtml(q)}</td></tr>`;
}

function steerToward(id) {
  let steer = {};
  try {
    steer = JSON.parse($("steer").value.trim() || "{}");
  } catch (error) {
    steer = {};
  }
  steer[String(id)] = 0.5;
  $("steer").value = JSON.stringify(steer);
}

function showExplain(e) {
  state.ran = e.budget.includes("->") ? e.budget.split("->")[1].trim() : e.budget;
  const stages = e.stages.map((s) => `<tr><td>${escapeHtml(s.stage)}</td><td class="num">${s.candidates}</td><td class="num">${s.bytes_read.toLocaleString()}</td><td class="num">${s.ms}</td></tr>`).join("");
  $("explain").innerHTML =
    `<p><b>${escapeHtml(e.budget)}</b> on ${escapeHtml(e.version)}: ${e.total_ms} ms, ${e.bytes_scanned.toLocaleString()} bytes read` +
    (e.calibration ? `<br>calibration: ${escapeHtml(e.calibration)}` : "") + "</p>" +
    `<table><thead><tr><th>stage</th><th>candidates</th><th>bytes read</th><th>ms</th></tr></thead><tbody>${stages}</tbody></table>`;
  drawPlot();
}

function drawPlot() {
  const svg = $("plot");
  if (!state.sweep) return (svg.innerHTML = "");
  const points = state.sweep.points;
  const current = points.find((p) => p.budget === state.ran);
  $("setting").textContent = !state.ran ? "" : current
    ? `${current.budget}: calibrated recall@10 ${current.recall_at_10.toFixed(3)}` + (current.recall_lower == null ? "" : ` (95% lower bound ${current.recall_lower.toFixed(3)})`) + `, ${current.ms_per_query.toFixed(3)} ms per query`
    : `${state.ran} was not measured by the sweep: no calibrated recall for it`;
  const W = 640, H = 320, L = 48, B = 30;
  const xs = points.map((p) => Math.log10(Math.max(p.ms_per_query, 1e-4)));
  const ys = points.map((p) => p.recall_at_10);
  const [x0, x1] = [Math.min(...xs) - 0.05, Math.max(...xs) + 0.05];
  const [y0, y1] = [Math.max(0, Math.min(...ys) - 0.02), 1.0];
  const X = (v) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - 10);
  const Y = (v) => H - B - ((v - y0) / (y1 - y0 || 1)) * (H - B - 10);
  const front = points.map((p, i) => [p, i]).filter(([p]) => p.pareto).sort((a, b) => a[0].ms_per_query - b[0].ms_per_query);
  let out = `<line x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="0" x2="${L}" y2="${H - B}" stroke="#999"/>`;
  out += `<text x="${W / 2}" y="${H - 6}">ms per query (log)</text><text x="${L + 6}" y="12">recall@10</text>`;
  out += `<polyline fill="none" stroke="#1f77b4" points="${front.map(([, i]) => X(xs[i]) + "," + Y(ys[i])).join(" ")}"/>`;
  points.forEach((p, i) => {
    out += `<circle class="${p.pareto ? "front" : "point"}" cx="${X(xs[i])}" cy="${Y(ys[i])}" r="3.5"><title>${escapeHtml(p.budget)}: recall ${p.recall_at_10}, ${p.ms_per_query} ms</title></circle>`;
    if (p.budget === state.ran) out += `<circle class="current" data-budget="${escapeHtml(p.budget)}" cx="${X(xs[i])}" cy="${Y(ys[i])}" r="8"/>`;
  });
  for (const v of [y0, (y0 + y1) / 2, y1]) out += `<text class="tick" x="4" y="${Y(v) + 3}">${v.toFixed(2)}</text>`;
  for (const v of latencyTicks(x0, x1)) out += `<line x1="${X(v)}" y1="${H - B}" x2="${X(v)}" y2="${H - B + 4}" stroke="#999"/><text class="tick" x="${X(v) - 10}" y="${H - B + 14}">${formatMs(10 ** v)}</text>`;
  front.forEach(([p, i], n) => {
    if (n % Math.ceil(front.length / 8) === 0) out += `<text class="label" x="${X(xs[i]) + 5}" y="${Y(ys[i]) - 5}">${escapeHtml(p.budget)}</text>`;
  });
  svg.innerHTML = out;
}

// Tick positions (log10 ms) at 1, 2 and 5 times powers of ten within [x0, x1], at most ~7.
function latencyTicks(x0, x1) {
  const ticks = [];
  for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) for (const m of [1, 2, 5]) ticks.push(e + Math.log10(m));
  const inside = ticks.filter((v) => v >= x0 && v <= x1);
  return inside.length > 7 ? inside.filter((v) => Math.abs(v - Math.round(v)) < 1e-9) : inside;
}

function formatMs(ms) {
  return ms >= 1 ? `${Number(ms.toPrecision(2))} ms` : `${Number((ms * 1000).toPrecision(2))} µs`;
}

function showError(message) {
  $("error").textContent = message;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

$("api-key").value = sessionStorage.getItem("vecdial-key") || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("vecdial-key", $("api-key").value.trim());
  loadCollections();
});
$("collection").addEventListener("change", () => loadCollection().catch((e) => showError(e.message)));
for (const input of document.querySelectorAll("select, input")) for (const event of ["input", "change"]) input.addEventListener(event, refreshControls);
$("search").addEventListener("click", search);
$("browse").addEventListener("click", () => browseFeatures().catch((e) => showError(e.message)));
$("feature-list").addEventListener("click", (e) => {
  if (e.target.dataset.steer !== undefined) steerToward(e.target.dataset.steer);
});
$("query").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) search();
});
loadCollections();
