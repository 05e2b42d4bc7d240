// The web page: plain JS over the public API only (/v1/models, /v1/videos, its events and content).
// Requests carry the API key (kept in localStorage) when the server asks for one; the video and the
// event stream are fetched with that header too, which <video src> and EventSource cannot send.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["height", "width", "frames", "steps", "guidance", "fps"];
const state = { models: [], current: null, job: null, videoUrl: null };

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = localStorage.getItem("i2v-key");
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("keybox").hidden = false;
    throw new Error("this server needs an API key");
  }
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error : { message: `${response.status} ${response.statusText}` };
  } catch (_) {
    return { message: `${response.status} ${response.statusText}` };
  }
}

// --- models, presets and field limits ---------------------------------------------------------

async function loadModels() {
  const response = await api("/v1/models");
  if (!response.ok) throw new Error((await errorText(response)).message);
  const data = await response.json();
  state.models = data.models;
  const d = data.device;
  $("device").textContent = `${d.kind.toUpperCase()} ${d.name}: ${(d.free_mib / 1024).toFixed(1)} of ` +
    `${(d.total_mib / 1024).toFixed(1)} GiB free · queue of ${data.queue_size}`;
  const select = $("model");
  select.innerHTML = "";
  for (const m of data.models) {
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = m.usable ? `${m.id} · ${m.title}` : `${m.id} · unavailable: ${m.reason_short}`;
    option.disabled = !m.usable;
    option.title = m.reason || m.title;
    select.appendChild(option);
  }
  const preferred = data.models.find((m) => m.id === data.default_model && m.usable) ||
    data.models.find((m) => m.usable);
  if (preferred) select.value = preferred.id;
  const preset = document.querySelector(`input[name=preset][value=${data.default_preset}]`);
  if (preset) preset.checked = true;
  selectModel();
}

function selectModel() {
  const model = state.models.find((m) => m.id === $("model").value);
  state.current = model;
  if (!model) return;
  $("model-note").textContent = model.reason || (model.built_on_first_use ? "tiny model, built on first use" : "");
  const c = model.constraints;
  const limits = {
    height: [c.min_size, c.max_size, c.size_multiple, `multiple of ${c.size_multiple}, ${c.min_size}–${c.max_size}`],
    width: [c.min_size, c.max_size, c.size_multiple, `multiple of ${c.size_multiple}, ${c.min_size}–${c.max_size}`],
    frames: [c.min_frames, c.max_frames, c.frames_step, c.frames_rule],
    steps: [c.min_steps, c.max_steps, 1, `${c.min_steps}–${c.max_steps}`],
    guidance: [c.min_guidance, c.max_guidance, 0.1, `${c.min_guidance}–${c.max_guidance}`],
    fps: [c.min_fps, c.max_fps, 1, `${c.min_fps}–${c.max_fps}`],
  };
  for (const [name, [min, max, step, hint]] of Object.entries(limits)) {
    const input = $(name);
    Object.assign(input, { min, max, step });
    $(`${name}-hint`).textContent = hint;
  }
  let firstFit = null;
  for (const p of model.presets) {
    const radio = document.querySelector(`input[name=preset][value=${p.name}]`);
    radio.disabled = !p.fits;
    radio.parentElement.title = p.fits ? p.plan : p.reason;
    radio.parentElement.classList.toggle("unfit", !p.fits);
    if (p.fits && !firstFit) firstFit = radio;
  }
  const checked = document.querySelector("input[name=preset]:checked");
  if ((!checked || checked.disabled) && firstFit) firstFit.checked = true;
  selectPreset();
}

function selectPreset() {
  const model = state.current;
  const name = document.querySelector("input[name=preset]:checked")?.value;
  const preset = model?.presets.find((p) => p.name === name);
  const unfit = model?.presets.filter((p) => !p.fits).map((p) => `${p.label}: ${p.reason}`) || [];
  $("preset-note").textContent = unfit.join(" · ");
  if (!preset || !preset.values) return;
  for (const field of FIELDS) $(field).value = preset.values[field];
}

// --- submitting and following a job -----------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const file = $("image").files[0];
  if (!file) return showError({ message: "choose an image first", field: "image" });
  const form = new FormData();
  form.append("image", file);
  form.append("model", $("model").value);
  form.append("preset", document.querySelector("input[name=preset]:checked").value);
  form.append("prompt", $("prompt").value);
  form.append("negative_prompt", $("negative_prompt").value);
  for (const field of [...FIELDS, "seed"]) form.append(field, $(field).value);
  $("submit").disabled = true;
  try {
    const response = await api("/v1/videos", { method: "POST", body: form });
    if (response.status !== 202) return showError(await errorText(response));
    const job = await response.json();
    startJob(job);
  } catch (e) {
    showError({ message: e.message });
  } finally {
    $("submit").disabled = false;
  }
}

function showError(err) {
  const box = $("form-error");
  let text = err.message;
  if (err.nearest !== undefined && err.nearest !== null) text += ` (nearest valid: ${err.nearest})`;
  box.textContent = text;
  box.hidden = false;
  if (err.field && $(err.field)) {
    $(err.field).classList.add("invalid");
    if (FIELDS.includes(err.field) || err.field === "seed") $("advanced").open = true;
  }
}

function startJob(job) {
  state.job = job.id;
  $("player").hidden = true;
  $("download").hidden = true;
  $("cancel").hidden = false;
  render(job);
  follow(job.id).catch(() => poll(job.id));
  refreshHistory();
}

function render(job) {
  if (job.id !== state.job) return;
  const p = job.progress;
  const bar = $("bar");
  bar.value = p.fraction;
  const eta = job.eta_s !== null && job.eta_s !== undefined ? ` · ETA ${Math.ceil(job.eta_s)} s` : "";
  let text;
  if (job.state === "queued") text = `queued (position ${job.queue_position + 1})${eta}`;
  else if (job.state === "running") text = `${p.stage} ${p.step}/${p.total_steps}${eta}`;
  else if (job.state === "failed") text = `failed: ${job.error.code}: ${job.error.message}`;
  else if (job.state === "succeeded" && job.result) {
    const r = job.result;
    text = `succeeded: ${r.frames} frames ${r.width}×${r.height} in ${r.run_s.toFixed(1)} s` +
      (job.seconds_per_step ? ` (${job.seconds_per_step.toFixed(2)} s/step)` : "");
  }
  else text = job.state;
  $("status").textContent = text;
  bar.dataset.state = job.state;
  if (["succeeded", "failed", "cancelled"].includes(job.state)) {
    $("cancel").hidden = true;
    if (job.state === "succeeded") showVideo(job.id);
    refreshHistory();
  }
}

async function follow(id) {
  const response = await api(`/v1/videos/${id}/events`);
  if (!response.ok) throw new Error("no event stream");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      const kind = (block.split("\n").find((l) => l.startsWith("event: ")) || "").slice(7);
      if (!data || kind === "draining") continue;
      const job = JSON.parse(data);
      render(job);
      if (kind === "end") return;
    }
  }
  poll(id);   // the stream ended early (server restart): fall back to polling
}

async function poll(id) {
  while (state.job === id) {
    const response = await api(`/v1/videos/${id}`);
    if (response.ok) {
      const job = await response.json();
      render(job);
      if (["succeeded", "failed", "cancelled"].includes(job.state)) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function showVideo(id) {
  const response = await api(`/v1/videos/${id}/content`);
  if (!response.ok) return;
  const blob = await response.blob();
  if (state.videoUrl) URL.revokeObjectURL(state.videoUrl);
  state.videoUrl = URL.createObjectURL(blob);
  const player = $("player");
  player.src = state.videoUrl;
  player.hidden = false;
  player.play().catch(() => {});
  const link = $("download");
  link.href = state.videoUrl;
  link.download = `i2v-${id}.mp4`;
  link.hidden = false;
}

async function cancelJob() {
  if (!state.job) return;
  const response = await api(`/v1/videos/${state.job}`, { method: "DELETE" });
  if (response.ok) render(await response.json());
}

// --- history ----------------------------------------------------------------------------------

async function refreshHistory() {
  const response = await api("/v1/videos?limit=10");
  if (!response.ok) return;
  const { items } = await response.json();
  const body = $("history").querySelector("tbody");
  body.innerHTML = "";
  for (const job of items) {
    const row = body.insertRow();
    const r = job.request;
    const cells = [new Date(job.created_at).toLocaleString(), job.model,
      `${r.width}×${r.height}, ${r.frames} frames`, job.state];
    for (const text of cells) row.insertCell().textContent = text;
    const action = row.insertCell();
    if (job.state === "succeeded") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small";
      button.textContent = "play";
      button.onclick = () => { state.job = job.id; render(job); };
      action.appendChild(button);
    }
  }
}

// --- wiring -----------------------------------------------------------------------------------

function previewImage() {
  const file = $("image").files[0];
  const img = $("preview");
  if (!file) { img.hidden = true; return; }
  img.src = URL.createObjectURL(file);
  img.hidden = false;
}

async function start() {
  $("model").addEventListener("change", selectModel);
  document.querySelectorAll("input[name=preset]").forEach((r) => r.addEventListener("change", selectPreset));
  $("image").addEventListener("change", previewImage);
  $("job").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancelJob);
  $("refresh").addEventListener("click", refreshHistory);
  $("savekey").addEventListener("click", () => {
    localStorage.setItem("i2v-key", $("apikey").value.trim());
    $("keybox").hidden = true;
    load();
  });
  await load();
}

async function load() {
  try {
    await loadModels();
    await refreshHistory();
    document.body.dataset.ready = "true";
  } catch (e) {
    $("device").textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", start, { once: true });
