// The web page: plain JS over the public API only (/v1/models, /v1/videos, its events and content),
// sending the wire names of POST /v1/videos (the `openai` SDK's, plus ours). Requests carry the API
// key (kept in localStorage) when the server asks for one; the video, the thumbnails and the event
// stream are fetched with that header too, which <video src>, <img src> and EventSource cannot send.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["height", "width", "frames", "steps", "guidance", "fps"];
// page input -> the wire field it is sent as (height and width go together as `size`)
const WIRE = { frames: "num_frames", steps: "num_inference_steps", guidance: "guidance_scale", fps: "fps", seed: "seed" };
// an error's field -> the page inputs to mark
const TARGETS = { size: ["width", "height"], seconds: ["frames"], input_reference: ["image"], image: ["image"] };
for (const [input, wire] of Object.entries(WIRE)) TARGETS[wire] = [input];
const ENDED = ["succeeded", "failed", "cancelled"];
const state = { models: [], loras: [], current: null, job: null, videoUrl: null, thumbs: new Map() };

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
  state.loras = data.loras;
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
  ModeInputs.fill(model, state.loras);
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
  const file = ModeInputs.takesImage() ? $("image").files[0] : null;
  if (!file && ModeInputs.needsImage()) return showError({ message: "choose an image first", field: "image" });
  const form = new FormData();
  if (file) form.append("input_reference", file);
  form.append("model", $("model").value);
  form.append("preset", document.querySelector("input[name=preset]:checked").value);
  form.append("prompt", $("prompt").value);
  form.append("negative_prompt", $("negative_prompt").value);
  if ($("width").value && $("height").value) form.append("size", `${$("width").value}x${$("height").value}`);
  for (const [input, wire] of Object.entries(WIRE)) form.append(wire, $(input).value);
  const missing = ModeInputs.collect(form);
  if (missing) return showError({ message: `this mode needs ${missing.replace("_", " ")}`, field: missing });
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
  const targets = (TARGETS[err.field] || [err.field]).map((id) => $(id) || ModeInputs.elementFor(id)).filter(Boolean);
  for (const el of targets) {
    el.classList.add("invalid");
    if (FIELDS.includes(el.id) || el.id === "seed") $("advanced").open = true;
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
  const bar = $("bar");
  bar.value = job.progress / 100;
  const eta = job.eta_s !== null && job.eta_s !== undefined ? ` · ETA ${Math.ceil(job.eta_s)} s` : "";
  let text;
  if (job.state === "queued") text = `queued (position ${job.queue_position + 1})${eta}`;
  else if (job.state === "running") text = `${job.stage} ${job.step}/${job.total_steps}${eta}`;
  else if (job.state === "failed") text = `failed: ${job.error.code}: ${job.error.message}`;
  else if (job.state === "succeeded" && job.result) {
    text = `succeeded: ${job.frames} frames ${job.size}, ${job.seconds} s, made in ${job.result.run_s.toFixed(1)} s` +
      (job.seconds_per_step ? ` (${job.seconds_per_step.toFixed(2)} s/step)` : "");
  }
  else text = job.state;
  if (job.notes && job.notes.length && !ENDED.includes(job.state)) text += ` · ${job.notes.join("; ")}`;
  $("status").textContent = text;
  bar.dataset.state = job.state;
  if (ENDED.includes(job.state)) {
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
      if (ENDED.includes(job.state)) return;
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

async function thumbnail(id) {
  if (!state.thumbs.has(id)) {
    state.thumbs.set(id, api(`/v1/videos/${id}/content?variant=thumbnail`)
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null)));
  }
  return state.thumbs.get(id);
}

async function refreshHistory() {
  const response = await api("/v1/videos?limit=10");
  if (!response.ok) return;
  const { data } = await response.json();
  const body = $("history").querySelector("tbody");
  body.innerHTML = "";
  for (const job of data) {
    const row = body.insertRow();
    const picture = row.insertCell();
    if (job.state === "succeeded") {
      const img = document.createElement("img");
      img.className = "thumb";
      img.alt = "first frame";
      thumbnail(job.id).then((url) => { if (url) img.src = url; });
      picture.appendChild(img);
    }
    const what = `${job.size}, ${job.frames} frames` + (job.mode ? `, ${job.mode}` : "");
    const status = job.state === "queued" ? `queued (position ${job.queue_position + 1})` : job.state;
    const cells = [new Date(job.created_at * 1000).toLocaleString(), job.model, what, status];
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
  ModeInputs.start();
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
