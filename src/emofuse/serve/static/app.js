// The emofuse demo page: upload or record a recording, POST it to /api/analyze, show what comes back.
// No framework and nothing from elsewhere: the page must work offline and under a strict CSP.
"use strict";

const COLORS = ["#6b7280", "#0ea5e9", "#eab308", "#6366f1", "#dc2626", "#a855f7", "#16a34a", "#f97316",
                "#14b8a6", "#be185d"];
const SVG = "http://www.w3.org/2000/svg";
// speaker_stats values of a predict entry: each upload is a file on its own, so "typical" is what it gets
const STATS_WORDS = {typical: "a typical training speaker's statistics", speaker: "its speaker's own statistics"};
let classes = [];

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function colorOf(name) {
  return COLORS[Math.max(0, classes.indexOf(name)) % COLORS.length];
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function loadModel() {
  try {
    const info = await (await fetch("/api/model")).json();
    classes = info.classes;
    $("model-name").textContent = info.config;
    $("model-modalities").textContent = `${info.modalities.join(" + ")}, ${info.fusion} fusion, ${info.folds.length} fold models`;
    $("model-classes").textContent = info.classes.join(", ");
  } catch (err) {
    showError(`cannot read /api/model: ${err}`);
  }
}

function renderBars(probs, pred) {
  const box = $("fused");
  box.replaceChildren();
  for (const name of classes) {
    const p = probs[name];
    if (p === undefined) continue;  // no speech: no probabilities
    const bar = el("div", {class: name === pred ? "bar top" : "bar"});
    const fill = el("div");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    box.append(el("span", {}, name), bar, el("span", {class: "num"}, p.toFixed(3)));
  }
}

function renderModalities(entry) {
  const modalities = Object.keys(entry.modality_probs);
  const head = el("tr");
  for (const h of ["class", "fused", ...modalities]) head.append(el("th", {}, h));
  $("modality-table").tHead.replaceChildren(head);
  const best = {};
  for (const m of modalities) {
    const probs = entry.modality_probs[m];
    best[m] = Object.keys(probs).reduce((a, b) => (probs[a] >= probs[b] ? a : b));
  }
  const rows = classes.map((name) => {
    const row = el("tr");
    const fused = entry.probs ? entry.probs[name].toFixed(3) : "";
    row.append(el("td", {}, name), el("td", {class: name === entry.pred ? "num top" : "num"}, fused));
    for (const m of modalities) {
      row.append(el("td", {class: best[m] === name ? "num top" : "num"}, entry.modality_probs[m][name].toFixed(3)));
    }
    return row;
  });
  $("modality-table").tBodies[0].replaceChildren(...rows);
  const missing = Object.entries(entry.missing || {});
  $("missing").replaceChildren(...missing.map(([m, reason]) => {
    const item = el("li");
    item.append(el("b", {}, `${m}: `), document.createTextNode(reason));
    item.dataset.modality = m;
    return item;
  }));
  $("missing-box").hidden = missing.length === 0;
}

function renderTimeline(timeline) {
  const section = $("timeline-section");
  if (!timeline || !timeline.segments) {
    section.hidden = !timeline || !timeline.skipped || !timeline.duration_s;
    $("timeline-note").textContent = timeline && timeline.skipped ? `No timeline: ${timeline.skipped}.` : "";
    $("timeline").replaceChildren();
    $("timeline-legend").replaceChildren();
    return;
  }
  section.hidden = false;
  const w = timeline.segments.filter((d) => d.pred !== null);  // speech segments; the rest of the strip is no speech
  const shares = Object.entries(timeline.summary).map(([c, s]) => `${c} ${(100 * s).toFixed(0)} %`).join(", ");
  $("timeline-note").textContent = timeline.no_speech ? `No speech in ${timeline.duration_s.toFixed(1)} s: ` +
    `${timeline.no_speech}.` : `${w.length} speech segments in ${timeline.duration_s.toFixed(1)} s ` +
    `(${timeline.speech_s.toFixed(1)} s of speech), each predicted on its own; lines: probability of each class at the ` +
    `segment's centre; strip: the predicted class (blank: no speech). Share of speech time: ${shares}.`;
  const width = 900, height = 260, left = 40, right = 10, top = 10, plot = 170, strip = 22;
  // the probability axis ends at the largest probability shown (rounded up to a tenth), so that small changes show
  const highest = Math.max(0, ...w.flatMap((d) => Object.values(d.probs)));
  const yMax = Math.min(1, Math.max(0.2, Math.ceil(highest * 10) / 10));
  const x = (t) => left + (t / timeline.duration_s) * (width - left - right);
  const y = (p) => top + (1 - p / yMax) * plot;
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline"});
  for (const p of [0, yMax / 2, yMax]) {
    chart.append(svg("line", {x1: left, x2: width - right, y1: y(p), y2: y(p), stroke: "#e3e6ea"}));
    const label = svg("text", {x: left - 6, y: y(p) + 4, "text-anchor": "end", "font-size": 11, fill: "#555"});
    label.textContent = p.toFixed(2);
    chart.append(label);
  }
  for (const name of classes) {
    const points = w.map((d) => `${x((d.start + d.end) / 2).toFixed(1)},${y(d.probs[name]).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", {points, fill: "none", stroke: colorOf(name), "stroke-width": 2, "data-class": name}));
  }
  const stripTop = top + plot + 12;
  w.forEach((d) => {
    const cell = svg("rect", {x: x(d.start), y: stripTop, width: Math.max(1, x(d.end) - x(d.start)), height: strip,
                              fill: colorOf(d.pred), class: "segment", "data-pred": d.pred});
    const title = svg("title");
    title.textContent = `${d.start.toFixed(1)}–${d.end.toFixed(1)} s: ${d.pred} (${d.probs[d.pred].toFixed(2)})`;
    cell.append(title);
    chart.append(cell);
  });
  const seconds = Math.ceil(timeline.duration_s);
  const step = Math.max(1, Math.ceil(seconds / 15));
  for (let t = 0; t <= seconds; t += step) {
    if (t > timeline.duration_s) break;
    const tick = svg("text", {x: x(t), y: stripTop + strip + 16, "text-anchor": "middle", "font-size": 11, fill: "#555"});
    tick.textContent = `${t} s`;
    chart.append(tick);
  }
  $("timeline").replaceChildren(chart);
  $("timeline-legend").replaceChildren(...classes.map((name) => {
    const key = el("span", {}, name);
    key.style.setProperty("--c", colorOf(name));
    return key;
  }));
}

function render(answer) {
  const entry = answer.prediction;
  $("result").hidden = false;
  $("pred").textContent = entry.pred === null ? "no speech" : entry.pred;  // no speech, no emotion
  $("pred-prob").textContent = entry.pred === null ? `(${entry.no_speech})` : `(${entry.probs[entry.pred].toFixed(3)})`;
  $("result-file").textContent = entry.file;
  $("result-modalities").textContent = entry.modalities.join(", ");
  const stats = entry.speaker_stats ? Object.entries(entry.speaker_stats) : [];
  $("speaker-stats").textContent = [
    stats.length ? `Speaker normalisation: ${stats.map(([m, s]) => `${m} with ${STATS_WORDS[s] || s}`).join(", ")}.` : "",
    ...(entry.warnings || []).map((w) => `Warning: ${w}.`),
  ].filter(Boolean).join(" ");
  renderBars(entry.probs || {}, entry.pred);
  renderModalities(entry);
  renderTimeline(answer.timeline);
}

async function analyze(file) {
  showError("");
  $("submit").disabled = true;
  $("record").disabled = true;
  setStatus(`Predicting ${file.name} (${(file.size / 1024).toFixed(0)} kB)…`);
  document.body.dataset.state = "busy";
  try {
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch("/api/analyze", {method: "POST", body: form});
    const answer = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
    if (!response.ok) {
      $("result").hidden = true;
      $("timeline-section").hidden = true;
      showError(answer.error || `${response.status} ${response.statusText}`);
      setStatus("");
      document.body.dataset.state = "error";
      return;
    }
    render(answer);
    setStatus(`Done: ${file.name}.`);
    document.body.dataset.state = "done";
  } catch (err) {
    showError(`the request failed: ${err}`);
    setStatus("");
    document.body.dataset.state = "error";
  } finally {
    $("submit").disabled = false;
    $("record").disabled = false;
  }
}

function play(blob) {
  const player = $("player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) {
    showError("choose a file first");
    return;
  }
  play(file);
  analyze(file);
});

let recorder = null;

async function startRecording() {
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("this browser cannot record here (recording needs http://localhost or https)");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({audio: true});
  } catch (err) {
    showError(`no microphone: ${err.message || err}`);
    return;
  }
  const types = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
  const mimeType = types.find((t) => MediaRecorder.isTypeSupported(t)) || "";
  recorder = new MediaRecorder(stream, mimeType ? {mimeType} : {});
  const chunks = [];
  const started = Date.now();
  const clock = setInterval(() => { $("record-time").textContent = `${((Date.now() - started) / 1000).toFixed(0)} s`; }, 250);
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = () => {
    clearInterval(clock);
    stream.getTracks().forEach((t) => t.stop());
    const type = recorder.mimeType || mimeType || "audio/webm";
    const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    const blob = new Blob(chunks, {type: type.split(";")[0]});
    recorder = null;
    $("record").textContent = "Record from the microphone";
    $("record").classList.remove("recording");
    const file = new File([blob], `recording.${ext}`, {type: blob.type});
    play(file);
    analyze(file);
  };
  recorder.start(250);
  showError("");
  setStatus("Recording… press Stop when done.");
  $("record").textContent = "Stop";
  $("record").classList.add("recording");
}

$("record").addEventListener("click", () => {
  if (recorder) recorder.stop();
  else startRecording();
});

loadModel();
