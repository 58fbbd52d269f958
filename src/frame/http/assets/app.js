// The control page: sends the frame's commands with the token (from the page's meta tag) and
// follows the frame's state by polling /api/state.
"use strict";
const token = document.querySelector('meta[name="petal-token"]').content;
const $ = (id) => document.getElementById(id);
let shown = null;
let settingsFilled = false;

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "X-Petal-Token": token, "Content-Type": "application/json" },
    body: body === undefined ? "" : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function thumb(name, cls) {
  const img = document.createElement("img");
  img.src = "/gallery/" + name;
  img.alt = name;
  img.title = name;
  img.className = cls;
  return img;
}

function render(s) {
  const pic = s.on_screen || "";
  if (pic !== shown) {
    shown = pic;
    $("current").src = "/picture?v=" + encodeURIComponent(pic);
  }
  const parts = [];
  if (s.seed !== null) parts.push("seed " + s.seed);
  if (s.painted_at) parts.push("painted " + new Date(s.painted_at).toLocaleString());
  if (s.paint_seconds !== null) parts.push(s.paint_seconds.toFixed(1) + " s");
  $("caption").textContent = parts.join(" · ");
  $("current").dataset.onScreen = pic;
  $("status").textContent = s.paused ? "paused" : "painting";
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("pause").classList.toggle("on", s.paused);
  const g = $("gallery");
  g.replaceChildren();
  for (const f of s.favourites || []) g.appendChild(thumb(f, "favourite"));
  for (const p of s.gallery || []) g.appendChild(thumb(p, p === pic ? "on-screen" : ""));
  if (!s.gallery) g.textContent = "This frame keeps no gallery (--gallery DIR).";
  if (s.settings && !settingsFilled) {
    settingsFilled = true;
    const f = $("settings-form").elements;
    f.every.value = s.settings.every;
    f.quiet_hours.value = s.settings.quiet_hours;
    f.steps.value = s.settings.steps === null ? "" : s.settings.steps;
    f.saturation.value = s.settings.saturation;
    f.rotate.value = String(s.settings.rotate);
    const keys = { every: "every", quiet_hours: "quiet-hours", steps: "steps", saturation: "display", rotate: "display" };
    for (const [field, key] of Object.entries(keys)) {
      if (s.fixed.includes(key)) f[field].disabled = true;
    }
    if (!s.can_save) {
      $("save").disabled = true;
      $("settings-note").textContent = "Started without --config: settings cannot be saved.";
    }
  }
}

async function refresh() {
  try {
    const r = await fetch("/api/state");
    if (!r.ok) throw new Error((await r.json()).error);
    render(await r.json());
  } catch (e) {
    $("status").textContent = "offline: " + e.message;
  }
}

for (const b of document.querySelectorAll("button[data-action]")) {
  b.addEventListener("click", async () => {
    try {
      await post("/api/" + b.dataset.action);
      $("message").textContent = b.textContent.trim() + ": sent";
      setTimeout(refresh, 300);
    } catch (e) {
      $("message").textContent = e.message;
    }
  });
}

$("settings-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const change = {};
  for (const name of ["every", "quiet_hours"]) if (!f[name].disabled) change[name] = f[name].value;
  if (!f.steps.disabled && f.steps.value !== "") change.steps = Number(f.steps.value);
  if (!f.saturation.disabled && f.saturation.value !== "") change.saturation = Number(f.saturation.value);
  if (!f.rotate.disabled) change.rotate = Number(f.rotate.value);
  try {
    const r = await post("/api/settings", change);
    $("settings-note").textContent = "Saved to " + r.saved + "; the frame uses them from its next picture.";
  } catch (e) {
    $("settings-note").textContent = e.message;
  }
});

refresh();
setInterval(refresh, 2000);
