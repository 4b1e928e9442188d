// distilora page: classify one text (one model or all side by side), batches, and the models' trade-offs.
"use strict";

const COMPARE = "__compare__";
const MAX_TEXTS = 256;         // per API request
const MAX_BATCH_ROWS = 5000;   // per page batch
const state = { models: [], byName: {}, labels: [], defaultModel: null, csvUrl: null };

// ---- small helpers -------------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const pct = (p) => `${(100 * p).toFixed(1)}%`;
const fixed = (x, digits = 3) => (typeof x === "number" ? x.toFixed(digits) : "–");

function millions(n) {
  if (typeof n !== "number") return "–";
  if (n < 1e3) return String(n);
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

// What computes a model's answers: pytorch fp32 / bf16, onnxruntime (fp32 or int8), numpy.
function runtimeText(info) {
  if (!info.backend) return "";
  const detail = info.quantization || (info.backend === "onnxruntime" ? "fp32" : info.precision);
  return detail ? `${info.backend} ${detail}` : info.backend;
}

function layersText(info) {
  if (info.layers && info.layers.length) return `${info.layers.join(", ")} (${info.layers.length})`;
  if (info.num_layers === 0) return "none";
  return info.num_layers ? `all ${info.num_layers}` : "all";
}

// Model kinds (results.json "route"), in the order the picker groups them.
const KINDS = [
  ["fine-tune", "Teacher", "fine-tuning"],
  ["distil", "Distilled students", "distillation"],
  ["lora", "LoRA", "LoRA adapters"],
  ["hybrid", "Hybrids (LoRA + distillation)", "LoRA + distillation"],
  ["baseline", "Baselines", "baseline"],
];
const COLLAPSED = "⚠ collapsed";

function kindGroups(models) {
  const known = new Set(KINDS.map(([route]) => route));
  const groups = KINDS.map(([route, title]) => [title, models.filter((m) => m.route === route)]);
  groups.push(["Other", models.filter((m) => !known.has(m.route))]);
  return groups.filter(([, members]) => members.length);
}

// "a b · c d": lines break only between the parts.
const parts = (...items) => items.map((item) => item.replace(/ /g, "\u00a0")).join(" · ");

function testF1(info) {
  return info.metrics && info.metrics.test ? info.metrics.test.macro_f1 : null;
}

function showError(box, message) {
  box.textContent = message ? `Error: ${message}` : "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error(`cannot reach the server (${error.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) throw new Error((body && body.message) || `HTTP ${response.status}`);
  return body;
}

function classify(texts, model) {
  return api("/api/v1/classify", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ texts, model }),
  });
}

// ---- model list, pickers and the About panel -------------------------------------------------------------------
function fillPicker(select) {
  select.replaceChildren();
  for (const [title, members] of kindGroups(state.models)) {
    const group = el("optgroup", { label: title });
    for (const info of members) {
      const suffix = (info.name === state.defaultModel ? " (default)" : "") + (info.collapsed ? ` ${COLLAPSED}` : "");
      const option = el("option", { value: info.name, text: `${info.name}${suffix}` });
      if (info.description) option.title = info.description;
      group.append(option);
    }
    select.append(group);
  }
  select.append(el("option", { value: COMPARE, text: `compare all (${state.models.length} models)` }));
  select.value = state.defaultModel;
}

function modelCell(info) {
  const cell = el("th", { scope: "row" }, info.name === state.defaultModel ? `${info.name} (default)` : info.name);
  if (info.collapsed) {
    cell.append(" ", el("span", { class: "flag", title: "flagged by the run's collapse check: it predicts nearly "
      + "one class", text: COLLAPSED }));
  }
  if (info.description) cell.append(el("span", { class: "desc", text: info.description }));
  return cell;
}

// A multi-label answer (it lists the labels that are on) or a single-label one.
const isMultiLabel = (result) => Array.isArray(result.labels);

// What a model said of a text: its label, or a multi-label model's labels that are on ("none" when none is).
function verdict(result) {
  if (!isMultiLabel(result)) return result.label;
  return result.labels.length ? result.labels.join(", ") : "none";
}

function thresholdsText(thresholds) {
  const entries = Object.entries(thresholds || {});
  if (entries.length && entries.every(([, t]) => t === entries[0][1])) return `each label if P ≥ ${entries[0][1].toFixed(3)}`;
  return entries.map(([label, t]) => `${label} if P ≥ ${t.toFixed(3)}`).join(", ");
}

// How a model's labels are chosen (the API's `decision`): a threshold tuned on validation, a threshold per label
// (multi-label models), or the argmax.
function decisionText(decision) {
  if (decision && decision.thresholds) return thresholdsText(decision.thresholds);
  if (!decision || decision.rule !== "threshold" || typeof decision.threshold !== "number") return "argmax";
  return `${decision.positive_label} if P ≥ ${decision.threshold.toFixed(3)}`;
}

function decisionNote(decision) {
  if (!decision) return null;
  if (decision.thresholds) {  // a multi-label model: every label at or above its own threshold is on
    const calibrated = decision.temperatures || typeof decision.temperature === "number";
    const tuned = decision.policy === "default" ? "not tuned" : `tuned on validation, ${decision.policy}`;
    return `labels: ${decisionText(decision)} (${tuned}); each label's own sigmoid, ${calibrated ? "calibrated" : "raw"}`;
  }
  const scores = typeof decision.temperature === "number"
    ? `scores calibrated (temperature ${decision.temperature.toFixed(2)})` : "raw scores";
  const rule = decision.rule === "threshold"
    ? `label: ${decisionText(decision)} (threshold tuned on validation, ${decision.policy})` : "label: the top score (argmax)";
  return `${rule}; ${scores}`;
}

function fillAbout() {
  const body = document.querySelector("#about-table tbody");
  body.replaceChildren();
  const teacher = state.models.find((m) => m.route === "fine-tune");
  const routes = Object.fromEntries(KINDS.map(([route, , words]) => [route, words]));
  for (const info of state.models) {
    const test = (info.metrics && info.metrics.test) || {};
    let params = millions(info.params);
    if (teacher && teacher.params && info.params && info !== teacher) {
      const share = (100 * info.params) / teacher.params;
      params += ` (${share < 1 ? "<1" : Math.round(share)}% of teacher)`;
    }
    let size = typeof info.size_mb === "number" ? `${info.size_mb.toFixed(1)} MB` : "–";
    if (typeof info.adapter_size_mb === "number") size += ` (adapter ${info.adapter_size_mb.toFixed(2)} MB)`;
    const cell = (label, text, cls = "") => el("td", { class: cls, "data-label": label, text });
    body.append(el("tr", { "data-model": info.name, "data-route": info.route || "" },
      modelCell(info),
      cell("Made by", routes[info.route] || info.route || "–"),
      cell("Layers", layersText(info)),
      cell("Parameters", params),
      cell("Size", size),
      cell("Test macro-F1", fixed(test.macro_f1), "num"),
      cell("Test accuracy", fixed(test.accuracy), "num"),
      cell("Decision", decisionText(info.decision))));
  }
}

async function loadModels() {
  try {
    const data = await api("/api/v1/models");
    state.models = data.models;
    state.labels = data.labels;
    state.defaultModel = data.default_model;
    state.byName = Object.fromEntries(data.models.map((m) => [m.name, m]));
    const runtimes = [...new Set(data.models.map(runtimeText).filter(Boolean))];
    document.getElementById("run-info").textContent = `Run: ${data.dataset || "unnamed"} · labels: `
      + `${data.labels.join(", ")}` + (runtimes.length ? ` · runs on ${runtimes.join(", ")}.` : ".");
    fillPicker(document.getElementById("model"));
    fillPicker(document.getElementById("batch-model"));
    fillAbout();
    document.getElementById("classify").disabled = false;
    document.getElementById("batch-run").disabled = false;
  } catch (error) {
    showError(document.getElementById("load-error"), `could not load the models: ${error.message}`);
  }
}

// ---- one text ----------------------------------------------------------------------------------------------------
function resultCard(name, result, elapsedMs, badge, decision) {
  const info = state.byName[name] || {};
  const card = el("article", { class: "result", "data-model": name, "data-label": result.label });
  card.append(el("header", {},
    el("h3", { text: name }),
    el("span", { class: "meta time", text: parts(`${elapsedMs.toFixed(1)} ms`, `layers ${layersText(info)}`,
      runtimeText(info)) }),
    el("span", { class: "meta", title: "macro-F1 on the test split",
      text: parts(`${millions(info.params)} params`, `test F1 ${fixed(testF1(info))}`) })));
  if (isMultiLabel(result)) card.append(el("p", { class: "prediction" }, "Labels on: ", labelChips(result.labels)));
  else card.append(el("p", { class: "prediction" }, "Predicted: ", el("strong", { class: "label", text: result.label })));
  const how = decisionNote(decision);
  if (how) card.append(el("p", { class: "note decision", text: how }));
  if (badge) {
    card.classList.add("disagrees");
    card.append(el("p", { class: "badge", text: `⚠ ${badge}` }));
  }
  card.append(scoreBars(name, result, decision));
  if (result.truncated) {
    card.append(el("p", { class: "note", text: `Only the first ${info.max_length || "?"} tokens were read (text truncated).` }));
  } else if (result.windows > 1) {
    card.append(el("p", { class: "note", text: `A long text: read in ${result.windows} overlapping windows of ${info.max_length || "?"} tokens, scored by the most positive one.` }));
  }
  return card;
}

// A chip per label that is on; "none" when no label is.
function labelChips(labels) {
  const chips = el("span", { class: "chips" });
  if (!labels.length) chips.append(el("span", { class: "chip none", text: "none" }));
  for (const label of labels) chips.append(el("strong", { class: "chip", text: label }));
  return chips;
}

// One bar per class, the top one marked (single-label, by score); a multi-label model's every label in its order,
// those that are on marked ✓, each track with its threshold.
function scoreBars(name, result, decision) {
  const multi = isMultiLabel(result);
  const thresholds = (multi && decision && decision.thresholds) || {};
  const bars = el("ul", { class: "bars", "aria-label": `${name}: probability per ${multi ? "label" : "class"}` });
  const entries = Object.entries(result.scores);
  const ordered = multi ? entries : entries.sort((a, b) => b[1] - a[1]);
  for (const [label, p] of ordered) {
    const top = multi ? result.labels.includes(label) : label === result.label;
    const fill = el("span", { class: "fill" });
    fill.style.width = pct(p);
    const track = el("span", { class: "track", "aria-hidden": "true" }, fill);
    const attrs = { class: top ? "bar top" : "bar", "data-label": label, "data-score": String(p) };
    if (multi) attrs["data-on"] = String(top);
    if (typeof thresholds[label] === "number") {
      const mark = el("span", { class: "threshold" });
      mark.style.left = pct(thresholds[label]);
      track.append(mark);
      attrs.title = `on at P ≥ ${pct(thresholds[label])}`;
    }
    bars.append(el("li", attrs,
      el("span", { class: "bar-label", text: top ? `${label} ${multi ? "✓" : "◀"}` : label }),
      track,
      el("span", { class: "bar-value", text: pct(p) })));
  }
  return bars;
}

function agreement(answers) {
  const counts = {};
  for (const a of answers) counts[verdict(a.result)] = (counts[verdict(a.result)] || 0) + 1;
  const ranked = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const majority = ranked.length === 1 || ranked[0][1] > ranked[1][1] ? ranked[0][0] : null;
  return { counts, majority, unanimous: ranked.length === 1 };
}

async function classifyOne() {
  const text = document.getElementById("text").value;
  const model = document.getElementById("model").value;
  const answer = document.getElementById("answer");
  const errorBox = document.getElementById("single-error");
  const button = document.getElementById("classify");
  showError(errorBox, "");
  if (!text.trim()) {
    showError(errorBox, "type a text first");
    return;
  }
  button.disabled = true;
  answer.setAttribute("aria-busy", "true");
  try {
    const names = model === COMPARE ? state.models.map((m) => m.name) : [model];
    const answers = [];
    for (const name of names) {  // one after another, so each model's time is its own
      const data = await classify([text], name);
      answers.push({ name: data.model, result: data.results[0], elapsedMs: data.elapsed_ms, decision: data.decision });
    }
    answer.replaceChildren();
    if (model === COMPARE) {
      const { majority, unanimous } = agreement(answers);
      const summary = unanimous
        ? `All ${answers.length} models agree: ${verdict(answers[0].result)}.`
        : `⚠ The models disagree: ${answers.map((a) => `${a.name} says ${verdict(a.result)}`).join("; ")}.`;
      answer.append(el("p", { class: unanimous ? "agreement agree" : "agreement disagree", text: summary }));
      const grid = el("div", { class: "compare", "data-count": String(answers.length) });
      for (const a of answers) {
        let badge = null;
        if (!unanimous) badge = majority === null ? "split vote" : verdict(a.result) === majority ? null : `disagrees (majority: ${majority})`;
        grid.append(resultCard(a.name, a.result, a.elapsedMs, badge, a.decision));
      }
      answer.append(grid);
    } else {
      answer.append(resultCard(answers[0].name, answers[0].result, answers[0].elapsedMs, null, answers[0].decision));
    }
  } catch (error) {
    showError(errorBox, error.message);
  } finally {
    button.disabled = false;
    answer.removeAttribute("aria-busy");
  }
}

// ---- batches -----------------------------------------------------------------------------------------------------
function parseCsv(text) {
  // RFC 4180: quoted fields may hold commas, quotes ("") and newlines.
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function batchTexts() {
  const file = document.getElementById("batch-file").files[0];
  if (file) {
    const rows = parseCsv((await file.text()).replace(/^\uFEFF/, ""));
    if (!rows.length) throw new Error(`${file.name} is empty`);
    const column = rows[0].findIndex((h) => h.trim().toLowerCase() === "text");
    if (column < 0) throw new Error(`${file.name} has no "text" column (its columns: ${rows[0].join(", ")})`);
    return rows.slice(1).map((r) => r[column] || "").filter((t) => t.trim());
  }
  return document.getElementById("batch-text").value.split(/\r?\n/).filter((t) => t.trim());
}

function csvCell(value) {
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;  // keep spreadsheets from running it as a formula
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function renderBatch(texts, names, byModel) {
  const labels = state.labels;
  const table = document.getElementById("batch-table");
  const single = names.length === 1;
  const head = ["#", "text"];
  const csvHead = ["text"];
  for (const name of names) {
    const labelColumn = (state.byName[name] || {}).multi_label ? "labels" : "label";
    head.push(single ? labelColumn : `${name}`);
    csvHead.push(single ? labelColumn : `${name}_${labelColumn}`);
    for (const label of labels) csvHead.push(single ? `p_${label}` : `${name}_p_${label}`);
    csvHead.push(single ? "truncated" : `${name}_truncated`);
  }
  if (single) head.push(...labels.map((l) => `P(${l})`));
  else { head.push("agree?"); csvHead.push("agree"); }

  const thead = el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h }))));
  const tbody = el("tbody");
  const csv = [csvHead.map(csvCell).join(",")];
  texts.forEach((text, i) => {
    const row = el("tr", {}, el("td", { class: "num", text: String(i + 1) }), el("td", { class: "text", text }));
    const csvRow = [text];
    const seen = new Set();
    for (const name of names) {
      const r = byModel[name][i];
      seen.add(verdict(r));
      const shown = isMultiLabel(r) ? verdict(r) : `${r.label} (${pct(r.scores[r.label])})`;
      row.append(el("td", { text: `${shown}${r.truncated ? " ✂" : ""}` }));
      csvRow.push(verdict(r), ...labels.map((l) => r.scores[l].toFixed(6)), r.truncated ? "true" : "false");
    }
    if (single) {
      const r = byModel[names[0]][i];
      for (const l of labels) row.append(el("td", { class: "num", text: pct(r.scores[l]) }));
    } else {
      const agree = seen.size === 1;
      row.append(el("td", { class: agree ? "agree" : "disagree", text: agree ? "yes" : "⚠ no" }));
      csvRow.push(agree ? "yes" : "no");
    }
    tbody.append(row);
    csv.push(csvRow.map(csvCell).join(","));
  });
  table.replaceChildren(thead, tbody);
  table.hidden = false;
  document.getElementById("batch-scroll-hint").hidden = false;

  const link = document.getElementById("batch-download");
  if (state.csvUrl) URL.revokeObjectURL(state.csvUrl);
  state.csvUrl = URL.createObjectURL(new Blob([csv.join("\r\n") + "\r\n"], { type: "text/csv" }));
  link.href = state.csvUrl;
  link.hidden = false;
}

async function classifyBatch() {
  const errorBox = document.getElementById("batch-error");
  const status = document.getElementById("batch-status");
  const button = document.getElementById("batch-run");
  showError(errorBox, "");
  button.disabled = true;
  document.getElementById("batch-table").hidden = true;
  document.getElementById("batch-download").hidden = true;
  document.getElementById("batch-scroll-hint").hidden = true;
  try {
    const texts = await batchTexts();
    if (!texts.length) throw new Error("no texts: paste some lines or choose a CSV file");
    if (texts.length > MAX_BATCH_ROWS) throw new Error(`${texts.length} texts: the page takes at most ${MAX_BATCH_ROWS}`);
    const choice = document.getElementById("batch-model").value;
    const names = choice === COMPARE ? state.models.map((m) => m.name) : [choice];
    const byModel = {};
    let elapsed = 0;
    for (const name of names) {
      byModel[name] = [];
      for (let start = 0; start < texts.length; start += MAX_TEXTS) {
        status.textContent = `Classifying with ${name}: ${start} of ${texts.length}…`;
        const data = await classify(texts.slice(start, start + MAX_TEXTS), name);
        byModel[name].push(...data.results);
        elapsed += data.elapsed_ms;
      }
    }
    renderBatch(texts, names, byModel);
    status.textContent = `${texts.length} texts classified by ${names.join(", ")} in ${elapsed.toFixed(0)} ms of model time.`;
  } catch (error) {
    status.textContent = "";
    showError(errorBox, error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- behavioural checks ------------------------------------------------------------------------------------------
const acc2 = (x) => (typeof x === "number" ? x.toFixed(2) : "–");

function checkAccuracyTable(check, grouping) {
  const teacher = check.teacher;
  const head = el("tr", {}, el("th", { scope: "col", text: grouping.column }), el("th", { scope: "col", class: "num", text: "n" }),
    ...check.models.map((m) => el("th", { scope: "col", class: "num", text: m })));
  const body = el("tbody");
  grouping.groups.forEach((group, i) => {
    const row = el("tr", {}, el("th", { scope: "row", text: group.group }),
      el("td", { class: "num", text: group.dropped ? `${group.n} (+${group.dropped} dropped)` : String(group.n) }));
    const reference = teacher ? grouping.accuracy[teacher][i].accuracy : null;
    for (const model of check.models) {
      const a = grouping.accuracy[model][i];
      const fell = model !== teacher && typeof reference === "number" && typeof a.accuracy === "number" && a.accuracy < reference;
      const cell = el("td", { class: fell ? "num fell" : "num", "data-model": model,
        title: a.accuracy === null ? "no cases" : `${a.correct} of ${a.n} right; ${check.interval} ${acc2(a.low)}–${acc2(a.high)}` },
        `${fell ? "▼ " : ""}${acc2(a.accuracy)}`);
      if (a.accuracy !== null) cell.append(el("span", { class: "ci", text: ` [${acc2(a.low)}, ${acc2(a.high)}]` }));
      row.append(cell);
    }
    body.append(row);
  });
  return el("div", { class: "table-wrap" }, el("table", { class: "check-table", "data-column": grouping.column },
    el("caption", { text: `Accuracy by ${grouping.column} (▼: below the teacher)` }), el("thead", {}, head), body));
}

function checkBrokeTable(check, grouping) {
  const headers = ["model", grouping.column, "n", "teacher", "model acc.", "change", "teacher ✓ model ✗",
    "model ✓ teacher ✗", "Holm p"];
  const head = el("tr", {}, ...headers.map((h, i) => el("th", { scope: "col", class: i >= 2 ? "num" : "", text: h })));
  const body = el("tbody");
  for (const [model, rows] of Object.entries(grouping.broke)) {
    const fell = rows.filter((r) => r.change < 0 && r.examples !== undefined);
    if (!fell.length) {
      body.append(el("tr", {}, el("th", { scope: "row", text: model }),
        el("td", { colspan: String(headers.length - 1), text: "no group fell below the teacher" })));
    }
    for (const r of fell) {
      body.append(el("tr", { class: "broke-row", "data-model": model, "data-group": r.group },
        el("th", { scope: "row", text: model }), el("td", { text: r.group }), el("td", { class: "num", text: String(r.n) }),
        el("td", { class: "num", text: acc2(r.teacher_accuracy) }), el("td", { class: "num", text: acc2(r.model_accuracy) }),
        el("td", { class: "num", text: r.change.toFixed(2) }), el("td", { class: "num", text: String(r.teacher_only_correct) }),
        el("td", { class: "num", text: String(r.model_only_correct) }),
        el("td", { class: "num", text: r.p_holm < 0.001 ? "< 0.001" : r.p_holm.toFixed(3) })));
      if (r.examples.length) {
        const list = el("ul", { class: "cases" },
          ...r.examples.map((c) => el("li", {}, el("q", { text: c.text }), ` gold ${c.gold}, teacher ${c.teacher}, ${model} ${c.model}`)));
        body.append(el("tr", { class: "examples-row" }, el("td", {}), el("td", { colspan: String(headers.length - 1) }, list)));
      }
    }
  }
  return el("div", { class: "table-wrap" }, el("table", { class: "broke-table" },
    el("caption", { text: `What compression broke, by ${grouping.column}: the groups whose accuracy fell most against ` +
      `the teacher (McNemar's exact test per group, Holm-adjusted), with cases the teacher got right and the model wrong` }),
    el("thead", {}, head), body));
}

const BIAS_METRICS = { overall: "overall AUC", subgroup: "subgroup AUC", bpsn: "BPSN AUC", bnsp: "BNSP AUC" };
const acc3 = (x) => (typeof x === "number" ? x.toFixed(3) : "–");
const withCi = (v, low, high) => (typeof low === "number" ? `${acc3(v)} [${acc3(low)}, ${acc3(high)}]` : acc3(v));

function checkBiasTable(check) {
  const bias = check.bias;
  const models = Object.keys(bias.models);
  const head = el("tr", {}, ...["identity", "metric", "n", ...models].map((h, i) =>
    el("th", { scope: "col", class: i >= 2 ? "num" : "", text: h })));
  const body = el("tbody");
  const row = (identity, metric, n, cells) => body.append(el("tr", {}, el("th", { scope: "row", text: identity }),
    el("td", { text: metric }), el("td", { class: "num", text: n }),
    ...cells.map((c) => el("td", { class: "num", text: c }))));
  const first = bias.models[models[0]];
  if (first.overall) {
    row("(all cases)", BIAS_METRICS.overall, String(first.overall.n),
      models.map((m) => { const o = bias.models[m].overall; return withCi(o.auc, o.low, o.high); }));
  }
  first.aucs.forEach((a, i) => row(a.identity, BIAS_METRICS[a.metric], String(a.n),
    models.map((m) => { const b = bias.models[m].aucs[i]; return withCi(b.auc, b.low, b.high); })));
  for (const metric of ["subgroup", "bpsn", "bnsp"]) {
    row(`power mean (p = ${bias.power})`, BIAS_METRICS[metric], "", models.map((m) => acc3(bias.models[m].power_means[metric])));
  }
  row("final bias metric", "", "", models.map((m) => {
    const f = bias.models[m].final; return withCi(f.estimate, f.low, f.high);
  }));
  return el("div", { class: "table-wrap" }, el("table", { class: "bias-table" },
    el("caption", { text: `Bias metrics by ${bias.identity_column} (score: P(${bias.positive_label}); ${bias.interval})` }),
    el("thead", {}, head), body));
}

function checkBiasChangeTable(check) {
  const headers = ["model", "identity", "metric", "teacher AUC", "model AUC", "change [interval]", "Holm p"];
  const head = el("tr", {}, ...headers.map((h, i) => el("th", { scope: "col", class: i >= 3 ? "num" : "", text: h })));
  const body = el("tbody");
  const signed = (v) => (typeof v === "number" ? `${v >= 0 ? "+" : ""}${v.toFixed(3)}` : "–");
  for (const [model, change] of Object.entries(check.bias.changes)) {
    const f = change.final;
    body.append(el("tr", { class: "bias-final-row", "data-model": model }, el("th", { scope: "row", text: model }),
      el("td", { text: "(all)" }), el("td", { text: "final bias metric" }), el("td", {}), el("td", {}),
      el("td", { class: "num", text: `${signed(f.estimate)} [${signed(f.low)}, ${signed(f.high)}]` }), el("td", {})));
    const fell = change.rows.filter((r) => r.change < 0);
    for (const r of fell) {
      body.append(el("tr", { class: "bias-fell-row", "data-model": model, "data-identity": r.identity },
        el("th", { scope: "row", text: model }), el("td", { text: r.identity }), el("td", { text: BIAS_METRICS[r.metric] }),
        el("td", { class: "num", text: acc3(r.teacher_auc) }), el("td", { class: "num", text: acc3(r.model_auc) }),
        el("td", { class: "num fell", text: `${signed(r.change)} [${signed(r.low)}, ${signed(r.high)}]` }),
        el("td", { class: "num", text: r.p_holm < 0.001 ? "< 0.001" : r.p_holm.toFixed(3) })));
    }
    if (!fell.length) {
      body.append(el("tr", {}, el("th", { scope: "row", text: model }),
        el("td", { colspan: String(headers.length - 1), text: "no identity AUC fell below the teacher's" })));
    }
  }
  return el("div", { class: "table-wrap" }, el("table", { class: "bias-change-table" },
    el("caption", { text: "Which identity got worse against the teacher: identity AUCs that fell, largest fall first " +
      "(paired bootstrap on the same resampled cases; Holm across one model's identity AUCs)" }),
    el("thead", {}, head), body));
}

function renderCheck(check) {
  const mapping = Object.entries(check.label_mapping).map(([gold, run]) => `${gold} → ${run}`).join(", ");
  const box = el("article", { class: "check", "data-check": check.name });
  box.append(el("h3", { text: `${check.name}` }));
  box.append(el("p", { class: "hint", text: parts(`${check.suite.used} cases from ${check.suite.file}`,
    `${check.suite.dropped_blank_text} dropped (blank text)`, `labels: ${mapping}`, `threshold: ${check.threshold}`) }));
  const overall = check.models.map((m) => `${m} ${acc2(check.overall[m].accuracy)}`).join(" · ");
  box.append(el("p", { text: `Accuracy on the whole suite: ${overall}.` }));
  for (const grouping of check.groupings) {
    box.append(checkAccuracyTable(check, grouping));
    if (Object.keys(grouping.broke).length) box.append(checkBrokeTable(check, grouping));
  }
  if (check.bias) {
    box.append(checkBiasTable(check));
    if (Object.keys(check.bias.changes).length) box.append(checkBiasChangeTable(check));
  }
  for (const note of check.notes || []) box.append(el("p", { class: "note", text: `Note: ${note}` }));
  return box;
}

async function loadChecks() {
  const body = document.getElementById("checks-body");
  try {
    const data = await api("/api/v1/checks");
    body.replaceChildren(...data.checks.map(renderCheck));
    document.getElementById("checks-empty").hidden = data.checks.length > 0;
  } catch (error) {
    body.replaceChildren(el("p", { class: "error", text: `Error: could not load the checks: ${error.message}` }));
  }
}

// ---- wiring ------------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  const text = document.getElementById("text");
  for (const button of document.querySelectorAll("button.example")) {
    button.addEventListener("click", () => { text.value = button.textContent; text.focus(); });
  }
  document.getElementById("classify").addEventListener("click", classifyOne);
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) classifyOne();
  });
  document.getElementById("batch-run").addEventListener("click", classifyBatch);
  document.getElementById("batch-file").addEventListener("change", () => showError(document.getElementById("batch-error"), ""));
  loadModels();
  loadChecks();
});
