// Mode inputs, driven by GET /v1/models: each mode of a model says which media inputs it needs and
// takes (`needs`, `takes`), whether the image is required or optional, whether it needs a LoRA. Only
// those fields are shown, and only shown fields are sent (the wire names of POST /v1/videos).
"use strict";

const ModeInputs = (() => {
  const $ = (id) => document.getElementById(id);
  const FILES = ["last_image", "audio", "video", "reference_video"];
  let model = null;

  function current() {
    return model?.modes.find((m) => m.name === $("mode").value) || null;
  }

  function fill(info, loras) {
    model = info;
    const select = $("mode");
    select.innerHTML = "";
    for (const m of info.modes) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.supported ? m.name : `${m.name} · not supported yet`;
      option.disabled = !m.supported;
      option.title = m.reason || m.summary;
      select.appendChild(option);
    }
    $("mode-row").hidden = info.modes.length === 0;
    if (info.default_mode) select.value = info.default_mode;
    const lora = $("lora");
    lora.innerHTML = '<option value="">none</option>';
    for (const entry of loras) {
      const option = document.createElement("option");
      option.value = option.textContent = entry.name;
      lora.appendChild(option);
    }
    show();
  }

  function show() {
    const mode = current();
    const takes = new Set(mode ? mode.takes : []);
    const needs = new Set(mode ? mode.needs : []);
    let any = false;
    for (const block of document.querySelectorAll("#inputs .input")) {
      const name = block.dataset.input;
      const shown = name === "lora" ? Boolean(model?.takes_loras) : takes.has(name);
      const needed = name === "lora" ? Boolean(mode?.needs_lora) : needs.has(name);
      block.hidden = !shown;
      block.dataset.required = String(needed);
      const need = block.querySelector(".need");
      if (need && name !== "audio") need.textContent = needed ? "(required)" : "(optional)";
      any = any || shown;
    }
    $("inputs").hidden = !any;
    const optional = mode?.image === "optional";
    $("image-row").hidden = mode?.image === "unused"; // a retake starts from its source video
    $("image-need").textContent = optional
      ? "(optional in this mode; PNG, JPEG or WebP)" : "(PNG, JPEG or WebP)";
    $("mode-note").textContent = mode ? mode.summary : "";
    return mode;
  }

  function addKeyframe() {
    const row = document.createElement("div");
    row.className = "keyframe";
    row.innerHTML = '<input type="file" class="kf-image" accept="image/png,image/jpeg,image/webp">' +
      '<input type="number" class="kf-frame" step="1" value="-1" title="frame (negative: from the end)">' +
      '<input type="number" class="kf-strength" step="0.05" min="0" max="1" value="1" title="strength">' +
      '<button type="button" class="small">remove</button>';
    row.querySelector("button").onclick = () => row.remove();
    $("keyframe-list").appendChild(row);
  }

  // Append the shown inputs to `form`; returns the first required one that is missing (or null).
  function collect(form) {
    const mode = current();
    if (mode) form.append("mode", mode.name);
    let missing = null;
    const shown = (name) => !document.querySelector(`#inputs .input[data-input=${name}]`).hidden;
    const required = (name) =>
      document.querySelector(`#inputs .input[data-input=${name}]`).dataset.required === "true";
    for (const name of FILES) {
      if (!shown(name)) continue;
      const file = $(name).files[0];
      if (file) form.append(name, file);
      else if (required(name) && !missing) missing = name;
    }
    if (shown("video")) {
      for (const name of ["start_time", "end_time"]) if ($(name).value !== "") form.append(name, $(name).value);
    }
    if (shown("keyframes")) {
      let index = 0;
      for (const row of document.querySelectorAll("#keyframe-list .keyframe")) {
        const file = row.querySelector(".kf-image").files[0];
        if (!file) continue;
        form.append(`keyframes[${index}][image]`, file);
        form.append(`keyframes[${index}][frame]`, row.querySelector(".kf-frame").value);
        form.append(`keyframes[${index}][strength]`, row.querySelector(".kf-strength").value);
        index += 1;
      }
      if (!index && required("keyframes") && !missing) missing = "keyframes";
    }
    if (shown("lora")) {
      if ($("lora").value) form.append("loras", `${$("lora").value}:${$("lora-scale").value || 1}`);
      else if (required("lora") && !missing) missing = "loras";
    }
    return missing;
  }

  // The element an error's `field` points at (null when none is on the page).
  function elementFor(field) {
    if (!field) return null;
    if (field === "loras") return $("lora");
    if (field.startsWith("keyframes")) return $("keyframe-list");
    return FILES.includes(field) || field === "start_time" || field === "end_time" ? $(field) : null;
  }

  function needsImage() {
    const mode = current();
    return !mode || mode.image === "required";
  }

  function takesImage() {
    return current()?.image !== "unused";
  }

  function start() {
    $("mode").addEventListener("change", show);
    $("add-keyframe").addEventListener("click", addKeyframe);
  }

  return { fill, show, collect, elementFor, needsImage, takesImage, start };
})();
