// platepilot labeling page: keyboard-only plate labeling. All keys go through one ordered queue, so
// a fast typist's keystrokes are never lost or reordered while a save is on its way to the server.
"use strict";

const SKIP = "__SKIP__";
const MAX_LEN = 12;
const $ = (id) => document.getElementById(id);
// This tab's id for the server's leases; kept across a reload (sessionStorage is per tab), so the crop a
// reloaded page held comes back to it instead of staying reserved for another page for 5 minutes. Only a
// reload reuses it: a duplicated tab gets a copy of sessionStorage, and must not share the first tab's crops.
const client = (() => {
  const key = "platepilot-label-client";
  const nav = self.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  let id = null;
  try { if (nav && nav.type === "reload") id = sessionStorage.getItem(key); } catch (e) { /* storage off */ }
  if (!id) {
    id = (self.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : Math.random().toString(36).slice(2) + Date.now().toString(36);
    try { sessionStorage.setItem(key, id); } catch (e) { /* as above */ }
  }
  return id;
})();

const state = {
  item: null,      // the crop on screen (server's Item JSON)
  text: "",        // what the plate box holds
  fresh: false,    // text is an untouched suggestion/saved label: the first typed character replaces it
  history: [],     // crop paths shown in this tab, oldest first
  pos: -1,         // index of the shown crop in history
  mode: "label",
  stopped: false,
  waiting: false,  // nothing left to label: polling for new crops
};
let queue = Promise.resolve();

async function call(path, body) {  // api() (api.js); every answer may carry the progress counts
  const data = await api(path, body);
  if (data.progress) showProgress(data.progress);
  return data;
}

function cropUrl(rel) {
  return "/crops/" + rel.split("/").map(encodeURIComponent).join("/");
}

function showProgress(p) {
  state.mode = p.mode;
  document.body.classList.toggle("review", p.mode === "review");
  $("mode").textContent = p.mode === "review" ? "review" : "labeling";
  $("done").textContent = p.done;
  $("total").textContent = p.total;
  $("saved").textContent = p.saved;
  $("rate").textContent = p.per_hour == null ? "–" : p.per_hour;
  $("bar-fill").style.width = p.total ? `${(100 * p.done) / p.total}%` : "0";
  if (p.last_line) $("last-line").textContent = `${p.labels_file} ← ${p.last_line.replace("\t", "  ")}`;
}

function hint(message, kind = "") {
  $("hint").textContent = message;
  $("hint").className = "hint " + kind;
}

function render() {
  const plate = $("plate");
  $("text").textContent = state.text === SKIP ? "SKIP" : state.text;
  plate.classList.toggle("suggested", state.fresh && state.item && state.item.current == null);
  plate.classList.toggle("saved", state.fresh && state.item && state.item.current != null);
  plate.classList.toggle("skip", state.text === SKIP);
  const item = state.item;
  const source = $("source");
  if (!item) { source.textContent = ""; return; }
  const s = item.suggestion;
  if (item.current != null) {
    source.innerHTML = "";
    source.append(`saved label: ${item.current === SKIP ? "skipped" : item.current}`);
    if (s && s.text === item.current && s.confidence != null) source.append(`  ·  pre-label by ${s.engine}`);
  } else if (s && s.text) {
    source.innerHTML = "";
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "suggestion";
    source.append(tag, ` by ${s.engine}` + (s.confidence == null ? "" : ` (${Math.round(s.confidence * 100)}%)`)
      + " · Enter accepts, typing replaces");
  } else {
    source.textContent = "type the plate";
  }
}

function chip(label, value, cls = "chip") {
  const el = document.createElement("span");
  el.className = cls;
  if (label) { el.append(label + " "); }
  const b = document.createElement("b");
  b.textContent = value;
  el.append(b);
  return el;
}

function fitImage() {
  const img = $("crop");
  const frame = $("frame");
  const w = img.naturalWidth, h = img.naturalHeight;
  if (!w || !h) return;
  let scale = Math.min((frame.clientWidth - 40) / w, (frame.clientHeight - 40) / h);
  if (scale >= 2) scale = Math.floor(scale);  // whole-pixel zoom keeps nearest-neighbour pixels square
  img.style.width = `${Math.round(w * scale)}px`;
  img.style.height = `${Math.round(h * scale)}px`;
}

function show(item) {
  state.item = item;
  state.waiting = false;
  $("empty").hidden = true;
  const img = $("crop");
  img.hidden = false;
  img.onload = fitImage;
  img.src = cropUrl(item.rel);
  img.dataset.rel = item.rel;
  const preset = item.current != null ? item.current : (item.suggestion ? item.suggestion.text : "");
  state.text = preset || "";
  state.fresh = Boolean(preset);
  const meta = $("meta");
  meta.replaceChildren();
  if (item.camera) meta.append(chip("camera", item.camera));
  if (item.date) meta.append(chip("date", item.date));
  if (item.track != null) meta.append(chip("track", String(item.track)));
  meta.append(chip("", item.rel, "chip path"));
  const reasons = $("reasons");
  reasons.replaceChildren(...item.reasons.map((r) => {
    const el = document.createElement("span");
    el.className = "reason";
    el.textContent = r.detail;
    el.dataset.code = r.code;
    return el;
  }));
  hint("");
  render();
}

function showEmpty(title, detail) {
  state.item = null;
  state.text = "";
  state.fresh = false;
  $("crop").hidden = true;
  $("crop").removeAttribute("src");
  $("meta").replaceChildren();
  $("reasons").replaceChildren();
  const empty = $("empty");
  empty.hidden = false;
  empty.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = title;
  empty.append(strong, detail);
  render();
}

async function loadNext() {
  const after = state.pos >= 0 ? state.history[state.pos] : null;
  const query = new URLSearchParams({ client });
  if (after && state.mode === "review") query.set("after", after);
  const data = await call("/api/next?" + query);
  if (!data.item) {
    state.waiting = true;
    if (data.progress.mode === "review") showEmpty("Review finished", "Every listed label was shown.");
    else showEmpty("All crops are labeled", "New crops show up here as they arrive; Ctrl+Q stops the server.");
    return;
  }
  state.history = state.history.slice(0, state.pos + 1);
  state.history.push(data.item.rel);
  state.pos = state.history.length - 1;
  show(data.item);
}

async function loadAt(pos) {
  const data = await call("/api/item?" + new URLSearchParams({ rel: state.history[pos] }));
  state.pos = pos;
  show(data.item);
}

async function save(text) {
  const item = state.item;
  if (!item) return false;
  let data;
  try {  // `shown`: a label another tab saved meanwhile is not silently undone (409: shown again)
    data = await call("/api/save", { client, rel: item.rel, text, shown: item.current == null ? "" : item.current });
  } catch (err) {
    if (err.status === 409) await loadAt(state.pos);
    throw err;
  }
  if (!data.line) $("last-line").textContent = `unchanged: ${item.rel} is already ${text}`;
  return true;
}

async function advance() {
  if (state.pos < state.history.length - 1) await loadAt(state.pos + 1);
  else await loadNext();
}

async function handle(key, ctrl) {
  if (state.stopped) return;
  if (ctrl && key.toLowerCase() === "q") {
    if (state.item && state.text && !state.fresh) await save(state.text);
    await call("/api/quit", { client });
    state.stopped = true;
    document.body.classList.add("stopped");
    showEmpty("Stopped", "Labels are saved. The server has stopped; you can close this tab.");
    return;
  }
  if (key === "[") {  // from the end screen, the crop shown last (it is not the one before it)
    const back = state.item ? state.pos - 1 : state.pos;
    if (back >= 0) await loadAt(back);
    else hint("this is the first crop of this tab");
    return;
  }
  if (!state.item) return;
  if (key === "Enter") {
    if (!state.text) { hint("type the plate first, or press Esc to skip an unreadable crop"); return; }
    await save(state.text);
    await advance();
  } else if (key === "Escape") {
    await save(SKIP);
    await advance();
  } else if (key === "Backspace") {
    state.text = state.text === SKIP ? "" : state.text.slice(0, -1);
    state.fresh = false;
    hint("");
  } else if (key === "Delete") {
    state.text = "";
    state.fresh = false;
  } else if (/^[a-z0-9]$/i.test(key)) {
    if (state.fresh || state.text === SKIP) state.text = "";
    state.fresh = false;
    if (state.text.length >= MAX_LEN) { hint(`at most ${MAX_LEN} characters`); return; }
    state.text += key.toUpperCase();
    hint("");
  } else if (key.length === 1) {
    hint(`"${key}" refused: plate text is A–Z and 0–9 only (Esc skips an unreadable crop)`, "error");
  }
  render();
}

document.addEventListener("keydown", (e) => {
  const ctrl = e.ctrlKey || e.metaKey;
  if (e.altKey || (ctrl && e.key.toLowerCase() !== "q")) return;  // leave browser shortcuts alone
  const ours = e.key.length === 1 || ["Enter", "Escape", "Backspace", "Delete"].includes(e.key);
  if (!ours) return;
  e.preventDefault();
  const key = e.key;
  queue = queue.then(() => handle(key, ctrl)).catch((err) => hint(String(err.message || err), "error"));
});

window.addEventListener("resize", fitImage);

// While nothing is left, look for newly arrived crops every two seconds.
setInterval(() => {
  if (state.waiting && !state.stopped && state.mode === "label") {
    queue = queue.then(() => (state.waiting ? loadNext() : null)).catch(() => {});
  }
}, 2000);

if (location.search.includes("token=")) history.replaceState(null, "", location.pathname);
queue = queue.then(loadNext).catch((err) => hint(String(err.message || err), "error"));
