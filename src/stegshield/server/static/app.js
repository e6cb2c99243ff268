// stegshield web page: scan (with heat maps), hide and reveal, against this server's API.
"use strict";

const $ = (id) => document.getElementById(id);
let lastStego = null; // {blob, name} of the image made by "Hide"

function authHeaders() {
  const t = $("token").value.trim();
  return t ? { Authorization: "Bearer " + t } : {};
}

async function apiError(resp) {
  try {
    const body = await resp.json();
    return body.detail || resp.statusText;
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

function setStatus(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("err", !!isError);
}

// ---- scan -------------------------------------------------------------------------------

function heatColour(v) {
  const a = Math.max(0, Math.min(1, (v - 0.2) / 0.8));
  return "rgba(255," + Math.round(220 * (1 - v)) + ",0," + (0.6 * a).toFixed(3) + ")";
}

function loadImage(file) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve({ img, url });
    img.onerror = () => { URL.revokeObjectURL(url); resolve(null); };
    img.src = url;
  });
}

async function drawResult(canvas, file, r) {
  const w = r.width || 256, h = r.height || 256;
  const scale = Math.min(1, 320 / Math.max(w, h));
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  const ctx = canvas.getContext("2d");
  const loaded = await loadImage(file); // TIFF / PGM cannot be shown by browsers
  if (loaded) {
    ctx.drawImage(loaded.img, 0, 0, canvas.width, canvas.height);
    URL.revokeObjectURL(loaded.url);
  } else {
    ctx.fillStyle = "#bbb";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  const hm = r.heatmap;
  // Heat maps only over flagged images (tile estimates are noisy; see docs/SCAN.md).
  if (!hm || !hm.values || !["alert", "suspicious"].includes(r.verdict)) return;
  const t = hm.tile * scale;
  canvas.dataset.tiles = String(hm.rows * hm.cols);
  for (let y = 0; y < hm.rows; y++) {
    for (let x = 0; x < hm.cols; x++) {
      const v = hm.values[y][x];
      if (v === null || v < 0.2) continue;
      ctx.fillStyle = heatColour(v);
      ctx.fillRect(x * t, y * t, Math.ceil(t), Math.ceil(t));
    }
  }
}

function fmt(x, d) { return x === null || x === undefined ? "–" : Number(x).toFixed(d); }

function resultCard(r) {
  const card = document.createElement("div");
  card.className = "result";
  card.dataset.verdict = r.verdict;
  const canvas = document.createElement("canvas");
  card.appendChild(canvas);
  const head = document.createElement("div");
  const badge = document.createElement("span");
  badge.className = "badge " + r.verdict;
  badge.textContent = r.verdict;
  head.appendChild(badge);
  head.append(" score " + fmt(r.score, 3));
  card.appendChild(head);
  const meta = document.createElement("div");
  meta.className = "meta";
  const lines = [r.path];
  if (r.width) lines.push(r.width + "×" + r.height + " " + (r.format || ""));
  if (r.payload_bpp !== null && r.payload_bpp !== undefined)
    lines.push("payload ≈ " + fmt(r.payload_bpp, 3) + " bits/sample");
  const dets = Object.entries(r.detectors || {}).map(([k, v]) => k + " " + fmt(v, 3));
  if (dets.length) lines.push(dets.join(", "));
  if (r.error) lines.push("error: " + r.error);
  (r.notes || []).forEach((n) => lines.push(n));
  lines.forEach((l) => { const d = document.createElement("div"); d.textContent = l; meta.appendChild(d); });
  card.appendChild(meta);
  return { card, canvas };
}

async function scanFiles(files) {
  const status = $("scan-status");
  if (!files.length) return;
  setStatus(status, "Scanning " + files.length + " image(s)…");
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  let resp;
  try {
    resp = await fetch("/v1/scan?heatmap=true", { method: "POST", body: form, headers: authHeaders() });
  } catch (e) {
    setStatus(status, "Network error: " + e, true);
    return;
  }
  if (!resp.ok) { setStatus(status, "Scan failed: " + (await apiError(resp)), true); return; }
  const body = await resp.json();
  const results = $("results");
  // results come back in upload order: pair by position (names may repeat, and the browser
  // may encode them, e.g. a quote as %22, so a lookup by name drew the wrong photo)
  const paired = body.results.map((r, i) => [r, files[i]]);
  const sorted = paired.sort((a, b) => (b[0].score ?? -1) - (a[0].score ?? -1));
  const batch = document.createDocumentFragment();
  const drawn = [];
  for (const [r, file] of sorted) { // highest score first; newest batch above older ones
    const { card, canvas } = resultCard(r);
    batch.appendChild(card);
    drawn.push(drawResult(canvas, file, r));
  }
  results.prepend(batch);
  await Promise.all(drawn);
  const alerts = body.results.filter((r) => r.verdict === "alert").length;
  setStatus(status, "Scanned " + body.results.length + " image(s) with " + body.detector +
    ": " + alerts + " alert(s).");
}

// ---- hide / reveal ----------------------------------------------------------------------

async function hide(ev) {
  ev.preventDefault();
  const status = $("hide-status");
  const file = $("hide-image").files[0];
  if (!file) { setStatus(status, "Choose a cover image.", true); return; }
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("message", $("hide-message").value);
  form.append("password", $("hide-password").value);
  setStatus(status, "Hiding…");
  const resp = await fetch("/v1/hide", { method: "POST", body: form, headers: authHeaders() });
  if (!resp.ok) { setStatus(status, "Hide failed: " + (await apiError(resp)), true); return; }
  const blob = await resp.blob();
  const name = file.name.replace(/\.[^.]*$/, "") + "_stego.png";
  lastStego = { blob, name };
  const url = URL.createObjectURL(blob);
  const out = $("hide-result");
  out.textContent = "";
  const img = document.createElement("img");
  img.src = url;
  img.alt = "stego image";
  const a = document.createElement("a");
  a.id = "hide-download";
  a.href = url;
  a.download = name;
  a.textContent = "Download " + name;
  out.append(img, a);
  $("reveal-use-last").hidden = false;
  const notes = resp.headers.get("X-Stegshield-Notes");  // what the command line warns about
  setStatus(status, "Hid " + resp.headers.get("X-Stegshield-Payload-Bytes") + " bytes (" +
    resp.headers.get("X-Stegshield-Changes") + " samples changed by ±1)." +
    (notes ? " Note: " + notes + "." : ""));
}

async function reveal(ev) {
  ev.preventDefault();
  const status = $("reveal-status");
  const output = $("reveal-output");
  output.textContent = "";
  let file = $("reveal-image").files[0];
  let name = file ? file.name : "";
  if (!file && lastStego) { file = lastStego.blob; name = lastStego.name; }
  if (!file) { setStatus(status, "Choose an image.", true); return; }
  const form = new FormData();
  form.append("image", file, name);
  form.append("password", $("reveal-password").value);
  setStatus(status, "Revealing…");
  const resp = await fetch("/v1/reveal", { method: "POST", body: form, headers: authHeaders() });
  if (!resp.ok) { setStatus(status, await apiError(resp), true); return; }
  const body = await resp.json();
  if (body.is_text) {
    output.textContent = body.text;
    setStatus(status, "Revealed " + body.size + " bytes of text.");
  } else {
    const bytes = Uint8Array.from(atob(body.data_base64), (c) => c.charCodeAt(0));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes]));
    a.download = body.name || "revealed.bin";
    a.textContent = "Download " + a.download;
    output.appendChild(a);
    setStatus(status, "Revealed a file of " + body.size + " bytes.");
  }
}

// ---- wiring -----------------------------------------------------------------------------

function init() {
  const drop = $("drop");
  $("scan-input").addEventListener("change", (e) => { scanFiles(Array.from(e.target.files)); e.target.value = ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => scanFiles(Array.from(e.dataTransfer.files)));
  $("hide-form").addEventListener("submit", hide);
  $("reveal-form").addEventListener("submit", reveal);
  $("reveal-use-last").addEventListener("click", () => {
    $("reveal-image").value = "";
    setStatus($("reveal-status"), lastStego ? "Using " + lastStego.name : "");
  });
  fetch("/healthz").then((r) => r.json()).then((h) => {
    $("token-box").hidden = !h.auth;
    if (h.save_uploads) $("storage").textContent = "scanned uploads are kept on it";
  }).catch(() => {});
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
