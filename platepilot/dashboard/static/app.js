// platepilot dashboard: live reads (server-sent events), search, a vehicle's page, watchlists, cameras.
// Every text from the server goes in through textContent or an attribute, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const FEED_MAX = 200;
let meta = { cameras: [], match_distance: 1 };
let watch = null;      // the watchlists document as loaded: {lists, version, file, error}
let watchRequest = 0;  // the latest watchlists request: an older answer landing later is not shown
let feed = null;       // the EventSource
let statsTimer = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function when(ts) { return new Date(ts * 1000).toLocaleString(); }
function status(text) { $("status").textContent = text || ""; }

function hitText(hit) {
  const note = hit.entry.note ? ` (${hit.entry.note})` : "";
  const entry = hit.entry.plate || `/${hit.entry.regex}/`;
  return `${hit.kind === "block" ? "BLOCK" : "known"} ${hit.list}: ${entry}${note} · ${hit.reason}`;
}

// the camera, after its device when the database has one (a fleet database: many devices, same camera ids)
function where(view) { return view.device_id ? `${view.device_id} · ${view.camera_id}` : view.camera_id; }

function readRow(view) {
  const row = $("read-row").content.firstElementChild.cloneNode(true);
  row.href = `#/vehicle/${view.id}`;
  row.dataset.id = view.id;
  const img = row.querySelector("img");
  if (view.crop) img.src = "/" + view.crop; else img.hidden = true;
  img.title = view.crop_name || "";
  row.querySelector(".plate").textContent = view.text;
  row.querySelector(".usstate").textContent = view.state && view.state !== "unknown" ? view.state : "";  // when known
  row.querySelector(".conf").textContent = view.confidence.toFixed(2);
  row.querySelector(".cam").textContent = where(view);
  row.querySelector(".when").textContent = when(view.first_seen);
  const hit = view.hits[0];
  if (hit) {
    row.classList.add(hit.kind);
    row.querySelector(".hit").textContent = hitText(hit);
  } else if (view.distance) {
    row.querySelector(".hit").textContent = `${view.distance} edit${view.distance > 1 ? "s" : ""} from the search`;
  }
  return row;
}

// live ----------------------------------------------------------------------------------------------
async function startLive() {
  const data = await api("/api/events?limit=50");
  const box = $("feed");
  box.replaceChildren(...data.events.map(readRow));
  connect(data.last_id);
}

function connect(after) {
  if (feed) feed.close();
  feed = new EventSource(`/api/feed?after=${after}`);
  feed.onopen = () => { $("feed-state").textContent = "live"; $("feed-state").classList.add("on"); };
  feed.onerror = () => { $("feed-state").textContent = "reconnecting"; $("feed-state").classList.remove("on"); };
  feed.onmessage = (msg) => {
    const box = $("feed");
    const view = JSON.parse(msg.data);
    if (box.querySelector(`.read[data-id="${Number(view.id)}"]`)) return;  // listed already (stored mid-load)
    box.prepend(readRow(view));
    while (box.children.length > FEED_MAX) box.lastElementChild.remove();
  };
}

// search --------------------------------------------------------------------------------------------
function searchParams() {
  const params = new URLSearchParams();
  const plate = $("q-plate").value.trim();
  if (plate) { params.set("plate", plate); params.set("fuzzy", $("q-fuzzy").value); }
  for (const [id, key] of [["q-since", "since"], ["q-until", "until"]]) {
    const value = $(id).value;
    if (value) params.set(key, String(new Date(value).getTime() / 1000));
  }
  if ($("q-camera").value) params.set("camera", $("q-camera").value);
  const device = $("q-device").value.trim();
  if (device) params.set("device", device);
  return params;
}

async function search(event) {
  if (event) event.preventDefault();
  const params = searchParams();
  $("export").href = `/api/events.csv?${params}`;
  params.set("limit", "500");
  try {
    const data = await api(`/api/events?${params}`);
    $("results").replaceChildren(...data.events.map(readRow));
    $("search-count").textContent = `${data.events.length} reads${data.events.length === 500 ? " (the newest 500)" : ""}`;
  } catch (err) { $("search-count").textContent = err.message; }
}

// vehicle -------------------------------------------------------------------------------------------
async function showVehicle(id) {
  const box = $("vehicle");
  box.replaceChildren(el("p", "muted", "loading…"));
  let data;
  try { data = await api(`/api/event/${encodeURIComponent(id)}`); } catch (err) {
    box.replaceChildren(el("p", "error", err.message));
    return;
  }
  const v = data.event;
  const left = el("div");
  if (v.crop) { const img = el("img"); img.src = "/" + v.crop; img.alt = "best crop"; left.append(img); }
  else left.append(el("p", "muted", v.crop_note || "no crop on disk"));
  left.append(el("p", "muted", v.crop_name));
  const facts = el("dl");
  const rows = [["plate", v.text], ["state", v.state || "–"], ["confidence", v.confidence.toFixed(3)],
    ...(v.device_id ? [["device", v.device_id]] : []), ["camera", v.camera_id], ["track", v.track_id], ["first seen", when(v.first_seen)],
    ["last seen", when(v.last_seen)], ["format", v.format || "–"], ["reader", `${v.engine} ${v.model_version}`]];
  for (const [k, value] of rows) facts.append(el("dt", "", k), el("dd", "", value));
  const right = el("div");
  right.append(facts);
  for (const hit of v.hits) right.append(el("p", `hit ${hit.kind}`, hitText(hit)));
  right.append(el("h3", "", "Fused candidates"));
  const table = el("table", "grid");
  table.append(...v.candidates.map(([t, c], i) => {
    const tr = el("tr");
    tr.append(el("td", "", `#${i + 1}`), el("td", "plate-text", t), el("td", "", c.toFixed(3)));
    return tr;
  }));
  right.append(table, el("h3", "", "Per-frame reads"));
  right.append(el("p", "muted", data.per_frame_reads === null
    ? `${v.reads} accepted reads were fused into this event; the runtime does not store them one by one.`
    : ""));
  const grid = el("div", "vehicle");
  grid.append(left, right);
  box.replaceChildren(grid);
}

// watchlists ----------------------------------------------------------------------------------------
async function loadWatchlists() {
  const request = ++watchRequest;
  const loaded = await api("/api/watchlists");
  if (request !== watchRequest) return;  // a save started meanwhile: its answer is newer than this one
  watch = loaded;
  renderWatchlists();
}

function renderWatchlists() {
  $("wl-file").textContent = watch.file;
  $("wl-error").hidden = !watch.error;
  $("wl-error").textContent = watch.error ? `the file on disk does not load (the lists below stay live): ${watch.error}` : "";
  const names = Object.keys(watch.lists);
  $("wl-names").replaceChildren(...names.map((n) => { const o = el("option"); o.value = n; return o; }));
  $("lists").replaceChildren(...names.map((name) => {
    const list = watch.lists[name];
    const box = el("div", "list");
    box.append(el("h3", "", `${name} · ${list.kind} · ${list.entries.length} entries`));
    const table = el("table", "grid");
    const head = el("tr");
    for (const h of ["plate / regex", "kind", "state", "note", "priority", "cameras", "hours", ""]) head.append(el("th", "", h));
    table.append(head);
    list.entries.forEach((e) => {
      const tr = el("tr");
      const del = el("button", "", "remove");
      del.type = "button";
      del.onclick = () => saveWatchlists((lists) => {  // this entry, wherever an earlier save left it
        const at = lists[name] ? lists[name].entries.findIndex((x) => JSON.stringify(x) === JSON.stringify(e)) : -1;
        if (at >= 0) lists[name].entries.splice(at, 1);
      });
      tr.append(el("td", "plate-text", e.plate || `/${e.regex}/`), el("td", "", e.kind || list.kind),
        el("td", "", e.state || "any"), el("td", "", e.note), el("td", "", e.priority), el("td", "", (e.cameras || []).join(", ") || "all"),
        el("td", "", (e.hours || []).join(", ") || "always"));
      const cell = el("td");
      cell.append(del);
      tr.append(cell);
      table.append(tr);
    });
    box.append(table);
    return box;
  }));
}

let watchSaves = Promise.resolve(true);

// Saves go one after another, each applying its change to the lists the one before saved: two quick
// clicks sent the same version twice, the second was refused (409) and its error wiped by the first's answer.
function saveWatchlists(change) {
  watchSaves = watchSaves.then(() => saveOnce(change));
  return watchSaves;
}

async function saveOnce(change) {
  const lists = structuredClone(watch.lists);
  change(lists);
  const request = ++watchRequest;
  try {
    const saved = await api("/api/watchlists", { lists, version: watch.version });
    if (request === watchRequest) {
      watch = saved;
      renderWatchlists();
    }
    status("watchlists saved");
    return true;
  } catch (err) {
    $("wl-error").hidden = false;
    $("wl-error").textContent = err.message;
    return false;
  }
}

function splitList(text) { return text.split(",").map((s) => s.trim()).filter(Boolean); }

async function addEntry(event) {
  event.preventDefault();
  const name = $("wl-list").value.trim();
  const entry = { note: $("wl-note").value, priority: Number($("wl-priority").value || 0),
    cameras: splitList($("wl-cameras").value), hours: splitList($("wl-hours").value) };
  if ($("wl-state").value.trim()) entry.state = $("wl-state").value.trim();
  if ($("wl-regex").value.trim()) entry.regex = $("wl-regex").value.trim();
  else entry.plate = $("wl-plate").value;
  const ok = await saveWatchlists((lists) => {
    if (!lists[name]) lists[name] = { kind: $("wl-list-kind").value, entries: [] };
    lists[name].entries.push(entry);
  });
  if (ok) for (const id of ["wl-plate", "wl-regex", "wl-note", "wl-state"]) $(id).value = "";
}

// cameras -------------------------------------------------------------------------------------------
async function loadStats() {
  const data = await api("/api/stats");
  $("stats-state").textContent = data.live ? "live" : (data.updated ? `last update ${when(data.updated)}` : "no pipeline running");
  $("stats-state").classList.toggle("on", data.live);
  const fmt = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  $("stats").replaceChildren(...data.cameras.map((c) => {
    const tr = el("tr");
    tr.dataset.camera = c.camera_id;
    tr.append(el("td", "", c.camera_id), el("td", "", fmt(c.fps, 1)), el("td", "", c.reads_last_hour),
      el("td", "", fmt(c.queue_depth)), el("td", "", fmt(c.detect_ms)), el("td", "", fmt(c.ocr_ms)),
      el("td", "", fmt(c.dropped)), el("td", "", fmt(c.skipped)), el("td", "", fmt(c.events)), el("td", "", c.error || (data.live ? "running" : "–")));
    return tr;
  }));
}

// routing -------------------------------------------------------------------------------------------
function route() {
  const [, view = "live", arg] = location.hash.split("/");
  const shown = view === "vehicle" ? "vehicle" : (["live", "search", "watchlists", "cameras"].includes(view) ? view : "live");
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${shown}`;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === shown);
  clearInterval(statsTimer);
  if (shown === "vehicle") showVehicle(arg);
  if (shown === "watchlists") loadWatchlists().catch((err) => status(err.message));
  if (shown === "cameras") { loadStats(); statsTimer = setInterval(loadStats, 5000); }
}

async function main() {
  meta = await api("/api/meta");
  $("q-camera").append(...meta.cameras.map((c) => { const o = el("option", "", c); o.value = c; return o; }));
  $("search-form").addEventListener("submit", search);
  $("wl-form").addEventListener("submit", addEntry);
  window.addEventListener("hashchange", route);
  route();
  await startLive();
}

// the token became a cookie on the first request: keep it out of the history and of screenshots
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname + location.hash);
main().catch((err) => status(err.message));
