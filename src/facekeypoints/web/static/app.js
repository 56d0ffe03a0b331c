// facekeypoints page: photos via POST /api/detect, webcam frames via WS /api/stream.
// Plain JS, no dependencies, nothing loaded from the internet.
"use strict";

const COLORS = { left: "rgb(255,60,60)", right: "rgb(40,160,255)", center: "rgb(60,220,60)" };
const BOX_COLOR = "rgb(255,230,0)";
const SKELETON = [
  ["left_eye_inner_corner", "left_eye_outer_corner"], ["right_eye_inner_corner", "right_eye_outer_corner"],
  ["left_eyebrow_inner_end", "left_eyebrow_outer_end"], ["right_eyebrow_inner_end", "right_eyebrow_outer_end"],
  ["mouth_left_corner", "mouth_center_top_lip"], ["mouth_center_top_lip", "mouth_right_corner"],
  ["mouth_right_corner", "mouth_center_bottom_lip"], ["mouth_center_bottom_lip", "mouth_left_corner"],
];
// The 68 iBUG landmarks (points=68): [first, end) index of each region, the closed ones, and the
// points on the subject's right / on the midline (mirrors facekeypoints.schema; tests/test_web.py checks).
const REGIONS68 = {
  jaw: [0, 17], right_eyebrow: [17, 22], left_eyebrow: [22, 27], nose_bridge: [27, 31], nose_base: [31, 36],
  right_eye: [36, 42], left_eye: [42, 48], outer_lip: [48, 60], inner_lip: [60, 68],
};
const CLOSED68 = ["right_eye", "left_eye", "outer_lip", "inner_lip"];
const RIGHT68 = [0, 1, 2, 3, 4, 5, 6, 7, 17, 18, 19, 20, 21, 31, 32, 36, 37, 38, 39, 40, 41, 48, 49, 50, 58, 59, 60, 61, 67];
const CENTER68 = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66];
const $ = (id) => document.getElementById(id);

// State other scripts (and the browser tests) can read.
window.fkp = { photo: null, frame: null, frames: 0, fps: 0 };

function side(name) {
  if (name.startsWith("left") || name === "mouth_left_corner") return "left";
  if (name.startsWith("right") || name === "mouth_right_corner") return "right";
  return "center";
}

function side68(i) {
  return CENTER68.includes(i) ? "center" : RIGHT68.includes(i) ? "right" : "left";
}

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// Draw an image source and the faces' boxes/keypoints (coordinates in that image's pixels).
function render(canvas, source, width, height, faces) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.drawImage(source, 0, 0, width, height);
  const showKp = $("show-kp").checked, showBox = $("show-box").checked;
  for (const face of faces) {
    const pts = face.keypoints, names = Object.keys(pts);
    const xs = names.map((n) => pts[n][0]), ys = names.map((n) => pts[n][1]);
    const size = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 8);
    const r = Math.max(2, size / 40), lw = Math.max(1, size / 120);
    if (showBox) {
      const [x0, y0, x1, y1] = face.box;
      ctx.strokeStyle = BOX_COLOR; ctx.lineWidth = lw;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      if (face.id !== undefined) {
        ctx.fillStyle = BOX_COLOR; ctx.font = `${Math.max(12, 4 * lw)}px sans-serif`;
        ctx.fillText(`#${face.id}`, x0, Math.max(y0 - 4, 12));
      }
    }
    if (!showKp) continue;
    ctx.strokeStyle = "rgba(220,220,220,0.9)"; ctx.lineWidth = lw;
    if (face.landmarks) { drawLandmarks(ctx, face.landmarks, r / 2); continue; }
    for (const [a, b] of SKELETON) {
      if (!pts[a] || !pts[b]) continue;
      ctx.beginPath(); ctx.moveTo(pts[a][0], pts[a][1]); ctx.lineTo(pts[b][0], pts[b][1]); ctx.stroke();
    }
    for (const n of names) {
      ctx.fillStyle = COLORS[side(n)];
      ctx.beginPath(); ctx.arc(pts[n][0], pts[n][1], r, 0, 2 * Math.PI); ctx.fill();
    }
  }
}

// 68 landmarks: a contour per region (closed around the eyes and lips), then the points.
function drawLandmarks(ctx, pts, r) {
  for (const [region, [first, end]] of Object.entries(REGIONS68)) {
    ctx.beginPath(); ctx.moveTo(pts[first][0], pts[first][1]);
    for (let i = first + 1; i < end; i++) ctx.lineTo(pts[i][0], pts[i][1]);
    if (CLOSED68.includes(region)) ctx.closePath();
    ctx.stroke();
  }
  pts.forEach(([x, y], i) => {
    ctx.fillStyle = COLORS[side68(i)];
    ctx.beginPath(); ctx.arc(x, y, Math.max(1.5, r), 0, 2 * Math.PI); ctx.fill();
  });
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = url;
  });
}

// ---------- filters and health ----------
let filterDescriptions = {};

async function loadFilters() {
  try {
    const list = await (await fetch("/api/filters")).json();
    const sel = $("filter");
    for (const f of list) {
      const opt = document.createElement("option");
      opt.value = f.name; opt.textContent = f.name; sel.appendChild(opt);
      filterDescriptions[f.name] = f.description || "";
    }
    if (!list.length) sel.disabled = true;
  } catch (e) { $("filter").disabled = true; }
}

async function loadHealth() {
  try {
    const h = await (await fetch("/api/health")).json();
    $("health").textContent = `v${h.version} · model ${h.model} · ${h.tracker ? "tracking" : "per-frame"} webcam`;
    const has68 = (h.points || [15]).includes(68);
    $("points68").disabled = !has68;
    $("points68-label").title = has68 ? "also the 68 iBUG landmarks, drawn as contours" : "the 68-point model is not installed";
  } catch (e) { setStatus($("health"), "server not reachable", true); }
}

function chosenFilter() { return $("filter").value; }
function chosenPoints() { return $("points68").checked && !$("points68").disabled ? 68 : 15; }

// ---------- photo mode ----------
let currentFile = null, currentResult = null, currentImage = null;

async function detectPhoto(file) {
  const status = $("photo-status");
  currentFile = file;
  setStatus(status, `detecting in ${file.name}…`);
  $("download").disabled = true;
  const form = new FormData();
  form.append("file", file, file.name);
  const filter = chosenFilter();
  const params = new URLSearchParams();
  if (filter) params.set("filter", filter);
  if (chosenPoints() === 68) params.set("points", "68");
  const url = "/api/detect" + (params.toString() ? `?${params}` : "");
  const t0 = performance.now();
  let res, body;
  try {
    res = await fetch(url, { method: "POST", body: form });
    body = await res.json();
  } catch (e) {
    setStatus(status, `request failed: ${e.message}`, true);
    return;
  }
  if (!res.ok) {
    setStatus(status, `${res.status}: ${body.detail || res.statusText}`, true);
    return;
  }
  const shown = body.annotated || URL.createObjectURL(file);
  try { currentImage = await loadImage(shown); } catch (e) { setStatus(status, e.message, true); return; }
  currentResult = body;
  window.fkp.photo = body;
  drawPhoto();
  fillTable(body);
  $("download").disabled = false;
  const ms = Math.round(performance.now() - t0);
  setStatus(status, `${body.image}: ${body.width}×${body.height}, ${body.faces.length} face(s), ${ms} ms`);
}

function drawPhoto() {
  if (!currentResult || !currentImage) return;
  render($("photo-canvas"), currentImage, currentResult.width, currentResult.height, currentResult.faces);
}

function fillTable(rec) {
  const tbody = $("kp-table").querySelector("tbody");
  tbody.replaceChildren();
  rec.faces.forEach((face, i) => {
    for (const [name, [x, y]] of Object.entries(face.keypoints)) {
      const tr = document.createElement("tr");
      tr.className = side(name);
      for (const [v, cls] of [[i, ""], [name, ""], [x.toFixed(1), "num"], [y.toFixed(1), "num"]]) {
        const td = document.createElement("td"); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    (face.landmarks || []).forEach(([x, y], j) => {
      const tr = document.createElement("tr");
      tr.className = side68(j);
      for (const [v, cls] of [[i, ""], [`p${j}`, ""], [x.toFixed(1), "num"], [y.toFixed(1), "num"]]) {
        const td = document.createElement("td"); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td);
      }
      tbody.appendChild(tr);
    });
  });
}

function downloadJson() {
  if (!currentResult) return;
  const { annotated, ...rec } = currentResult;
  const blob = new Blob([JSON.stringify(rec, null, 2) + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = (rec.image || "photo").replace(/\.[^.]*$/, "") + ".json";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function setupDrop() {
  const drop = $("drop"), input = $("file");
  input.addEventListener("change", () => { if (input.files.length) detectPhoto(input.files[0]); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const f = e.dataTransfer.files[0];
    if (f) detectPhoto(f);
  });
}

// ---------- webcam mode ----------
const cam = { stream: null, ws: null, running: false, inFlight: false, waiting: false, sent: null, times: [] };

async function startCam() {
  const status = $("cam-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus(status, "this browser gives no camera access here (open the page from localhost or over HTTPS)", true);
    return;
  }
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    setStatus(status, `camera unavailable: ${e.message || e.name}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = cam.stream;
  await video.play();
  cam.running = true; cam.inFlight = false; cam.times = [];
  $("cam-start").disabled = true; $("cam-stop").disabled = false;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/stream`);
  ws.binaryType = "arraybuffer";
  cam.ws = ws;
  ws.onopen = () => { sendSettings(); setStatus(status, "streaming"); pump(); };
  ws.onmessage = (ev) => onCamMessage(JSON.parse(ev.data));
  ws.onerror = () => setStatus(status, "connection error", true);
  ws.onclose = () => { if (cam.running) { setStatus(status, "connection closed", true); stopCam(false); } };
}

function stopCam(clearStatus = true) {
  cam.running = false;
  if (cam.ws) { cam.ws.onclose = null; cam.ws.close(); cam.ws = null; }
  if (cam.stream) { cam.stream.getTracks().forEach((t) => t.stop()); cam.stream = null; }
  $("cam-start").disabled = false; $("cam-stop").disabled = true;
  if (clearStatus) setStatus($("cam-status"), "stopped");
}

function sendSettings() {
  if (cam.ws && cam.ws.readyState === WebSocket.OPEN) {
    cam.ws.send(JSON.stringify({ filter: chosenFilter(), points: chosenPoints() }));
  }
}

// Send the next camera frame once the previous answer is back: one frame in flight.
function pump() {
  if (!cam.running || cam.inFlight || cam.waiting || !cam.ws || cam.ws.readyState !== WebSocket.OPEN) return;
  const video = $("video");
  cam.waiting = true;
  let done = false;
  const go = () => { if (done) return; done = true; cam.waiting = false; sendFrame(); };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(go); // a new camera frame
  setTimeout(go, 250); // fallback when frame callbacks do not fire (hidden tab, old browser)
}

function sendFrame() {
  if (!cam.running || cam.inFlight || !cam.ws || cam.ws.readyState !== WebSocket.OPEN) return;
  const video = $("video");
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) { pump(); return; }
  const grab = document.createElement("canvas");
  grab.width = w; grab.height = h;
  grab.getContext("2d").drawImage(video, 0, 0, w, h);
  cam.inFlight = true;
  cam.sent = grab;
  grab.toBlob((blob) => {
    if (!blob || !cam.ws || cam.ws.readyState !== WebSocket.OPEN) { cam.inFlight = false; return; }
    blob.arrayBuffer().then((buf) => cam.ws && cam.ws.send(buf));
  }, "image/jpeg", 0.85);
}

async function onCamMessage(msg) {
  if (msg.type === "settings") return;
  if (msg.type === "error") { setStatus($("cam-status"), msg.error, true); return; }
  if (msg.type !== "frame") return;
  const frame = cam.sent;
  if (msg.error) {
    setStatus($("cam-status"), `frame refused: ${msg.error}`, true);
  } else {
    let source = frame;
    if (msg.image) { try { source = await loadImage(msg.image); } catch (e) { /* keep the raw frame */ } }
    render($("cam-canvas"), source, msg.width, msg.height, msg.faces);
    window.fkp.frame = msg;
    window.fkp.frames += 1;
    const now = performance.now();
    cam.times.push(now);
    while (cam.times.length > 2 && now - cam.times[0] > 2000) cam.times.shift();
    if (cam.times.length > 1) {
      window.fkp.fps = (cam.times.length - 1) * 1000 / (now - cam.times[0]);
      $("fps").textContent = window.fkp.fps.toFixed(1);
    }
    $("server-ms").textContent = Math.round(msg.ms);
    $("cam-faces").textContent = msg.faces.length;
  }
  cam.inFlight = false;
  pump();
}

// ---------- wiring ----------
function selectTab(which) {
  const photo = which === "photo";
  $("photo-pane").hidden = !photo; $("cam-pane").hidden = photo;
  $("tab-photo").classList.toggle("active", photo); $("tab-cam").classList.toggle("active", !photo);
  $("tab-photo").setAttribute("aria-selected", photo); $("tab-cam").setAttribute("aria-selected", !photo);
  if (photo && cam.running) stopCam();
}

document.addEventListener("DOMContentLoaded", () => {
  $("tab-photo").addEventListener("click", () => selectTab("photo"));
  $("tab-cam").addEventListener("click", () => selectTab("cam"));
  $("cam-start").addEventListener("click", startCam);
  $("cam-stop").addEventListener("click", () => stopCam());
  $("download").addEventListener("click", downloadJson);
  $("filter").addEventListener("change", () => {
    $("filter-desc").textContent = filterDescriptions[chosenFilter()] || "";
    sendSettings();
    if (currentFile) detectPhoto(currentFile);
  });
  for (const id of ["show-kp", "show-box"]) $(id).addEventListener("change", drawPhoto);
  $("points68").addEventListener("change", () => {
    sendSettings();
    if (currentFile) detectPhoto(currentFile);
  });
  setupDrop();
  loadFilters();
  loadHealth();
});
