// The Settings page. Every string from the daemon is put in the page as text
// (textContent, with control characters made visible), never parsed as HTML.

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "running"]);
const FINAL = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 5000;
const JOBS_SHOWN = 15;

const page = {
  status: null,
  jobs: new Map(), // job_id → job
  followed: null, // the import shown in the import card
  chart: [], // [seconds since followed, fraction done]
  chartStart: 0,
  socket: null,
  pollTimer: null,
  reconnectMs: 1000,
  pending: new Map(), // debounced refreshes
};

// -- text -------------------------------------------------------------------------------

// C0/C1 controls and bidi overrides are shown, not obeyed: a name cannot hide or reorder text.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function visible(value) {
  return String(value).replace(INVISIBLE, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // ␀ … ␟
    if (code === 0x7f) return "\u2421"; // ␡
    return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
  });
}

function show(node, value) {
  node.textContent = value === null || value === undefined || value === "" ? "–" : visible(value);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = visible(value);
    else if (key === "cls") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function localTime(at) {
  if (at === null || at === undefined || at === "") return "–";
  const date = typeof at === "number" ? new Date(at * 1000) : new Date(at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleString();
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  let s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

function n(number) {
  return typeof number === "number" ? number.toLocaleString() : "–";
}

function song(track) {
  if (!track) return null;
  const parts = [track.artist, track.title];
  if (track.album) parts.push(track.album);
  return parts.join(" — ");
}

// -- talking to the daemon --------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    location.reload(); // the token changed: back to the login form
    throw new ApiError(401, "logged out");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
  }
  return data;
}

function later(name, action, ms = 250) {
  if (page.pending.has(name)) return;
  page.pending.set(
    name,
    setTimeout(() => {
      page.pending.delete(name);
      action().catch(report);
    }, ms),
  );
}

function report(error) {
  if (error instanceof ApiError && error.status === 401) return;
  notify({ title: "Something went wrong", lines: [["", error.message]], kind: "failure" });
}

// -- tracker ----------------------------------------------------------------------------

async function refreshStatus() {
  const status = await api("GET", "/api/v1/status");
  page.status = status;
  show($("listens"), `${status.listens.toLocaleString()} listens`);
  show($("version"), `v${status.version}`);
  renderTracker(status.tracker, status.configured);
  for (const job of status.jobs || []) mergeJob(job, false);
  renderJobs();
}

function renderTracker(tracker, configured) {
  const card = $("tracker");
  const running = Boolean(tracker.running);
  card.classList.toggle("tracker-running", running);
  card.classList.toggle("tracker-stopped", !running);
  card.classList.remove("tracker-unknown");
  show($("tracker-icon"), running ? "▶" : "■");
  show($("tracker-state"), running ? "● Running" : "● Stopped");
  show($("tracker-interval"), `${tracker.interval_seconds} s`);
  const input = $("interval-input");
  if (document.activeElement !== input && !input.dataset.edited) {
    input.value = String(tracker.interval_seconds);
  }
  showLastTrack(tracker.last_track);
  show($("tracker-now"), song(tracker.now_playing) || "nothing");
  show($("tracker-next"), running ? localTime(tracker.next_poll_at) : null);
  show($("tracker-recorded"), `${tracker.scrobbles_recorded} since the daemon started`);
  let problem = tracker.last_error || "none";
  if (configured && !configured.lastfm) {
    problem = "Last.fm is not configured: set [lastfm] api_key and username";
  }
  show($("tracker-error"), problem);
  const toggle = $("tracker-toggle");
  toggle.textContent = running ? "Stop the tracker" : "Start the tracker";
  toggle.classList.toggle("danger", running);
  toggle.classList.toggle("primary", !running);
  toggle.dataset.running = String(running);
}

let lastShown = null;

function showLastTrack(track) {
  // The newest wins: a status read may be older than a scrobble event already shown.
  if (track && lastShown && (track.timestamp ?? 0) < (lastShown.timestamp ?? 0)) return;
  lastShown = track;
  const node = $("tracker-last");
  if (!track) {
    show(node, "none yet");
    return;
  }
  node.textContent = "";
  node.append(el("span", { cls: "song", text: song(track) }));
  if (track.timestamp) node.append(el("span", { cls: "muted", text: ` (${localTime(track.timestamp)})` }));
}

function chosenInterval() {
  const seconds = Number($("interval-input").value);
  return Number.isFinite(seconds) && seconds >= 1 ? seconds : undefined;
}

async function toggleTracker() {
  const running = $("tracker-toggle").dataset.running === "true";
  if (running) await api("POST", "/api/v1/tracker/stop", {});
  else await api("POST", "/api/v1/tracker/start", { interval_seconds: chosenInterval() });
  delete $("interval-input").dataset.edited;
  await refreshStatus();
}

async function applyInterval(event) {
  event.preventDefault();
  $("interval-input").blur();
  if ($("tracker-toggle").dataset.running !== "true") {
    notify({ title: "Interval kept", lines: [["", "It applies when the tracker starts."]], kind: "info" });
    return;
  }
  await api("POST", "/api/v1/tracker/start", { interval_seconds: chosenInterval() });
  delete $("interval-input").dataset.edited;
  await refreshStatus();
}

// -- jobs -------------------------------------------------------------------------------

function mergeJob(job, announce) {
  const before = page.jobs.get(job.job_id);
  // Answers and events reach the page in no set order: an answer the daemon gave while the
  // job ran can arrive after the event saying it ended. An ended job never runs again.
  const outdated = before && FINAL.has(before.state) && !FINAL.has(job.state);
  if (!outdated) page.jobs.set(job.job_id, { ...(before || {}), ...job });
  const now = page.jobs.get(job.job_id);
  if (now.kind === "import" && (ACTIVE.has(now.state) || now.state === "paused")) {
    follow(now);
  }
  if (now.job_id === page.followed) renderImport(now);
  if (announce && before && !FINAL.has(before.state) && FINAL.has(now.state)) ended(now);
  if (announce && now.kind === "import") {
    // What an import changes elsewhere on the page: the listens count, albums, the queue.
    later("status", refreshStatus, FINAL.has(now.state) ? 0 : 1000);
    later("enrichment", refreshEnrichment, 1000);
    later("albums", refreshAlbums, 3000);
  }
}

async function refreshJobs() {
  const jobs = await api("GET", `/api/v1/jobs?limit=${JOBS_SHOWN}`);
  for (const job of jobs.slice().reverse()) mergeJob(job, true);
  renderJobs();
}

function progressText(job) {
  const total = job.pages_total ? job.pages_total : "?";
  return `page ${job.pages_done} / ${total}`;
}

function renderJobs() {
  // Rows are kept and updated in place: progress events come several times a second, and
  // a row rebuilt under the pointer would swallow a click on its buttons.
  const body = $("jobs-body");
  const jobs = [...page.jobs.values()].sort((a, b) => b.job_id - a.job_id).slice(0, JOBS_SHOWN);
  $("jobs-empty").hidden = jobs.length > 0;
  const shown = new Set(jobs.map((job) => String(job.job_id)));
  for (const row of [...body.children]) if (!shown.has(row.dataset.jobId)) row.remove();
  let previous = null;
  for (const job of jobs) {
    let row = body.querySelector(`tr[data-job-id="${job.job_id}"]`);
    if (!row) {
      row = el("tr", { "data-job-id": String(job.job_id) });
      for (let i = 0; i < 8; i += 1) row.append(el("td"));
      row.lastChild.className = "actions-cell";
    }
    fillJobRow(row, job);
    const place = previous ? previous.nextSibling : body.firstChild;
    if (row !== place) body.insertBefore(row, place);
    previous = row;
  }
}

function fillJobRow(row, job) {
  const cells = row.children;
  show(cells[0], `#${job.job_id}`);
  show(cells[1], job.kind);
  const stateKey = JSON.stringify([job.state, job.error, job.upstream_trouble]);
  if (row.dataset.stateKey !== stateKey) {
    row.dataset.stateKey = stateKey;
    cells[2].textContent = "";
    cells[2].append(el("span", { cls: `job-state job-${job.state}`, text: job.state }));
    if (job.error) cells[2].append(el("div", { cls: "muted", text: job.error }));
    if (job.upstream_trouble) cells[2].append(el("div", { cls: "warning", text: job.upstream_trouble }));
  }
  show(cells[3], progressText(job));
  show(cells[4], `${n(job.tracks_imported)} / ${n(job.tracks_skipped)} / ${n(job.tracks_errors)}`);
  show(cells[5], localTime(job.started_at));
  show(cells[6], localTime(job.finished_at));
  if (row.dataset.state !== job.state) {
    row.dataset.state = job.state;
    const actions = cells[7];
    actions.textContent = "";
    const button = (label, action, cls = "small") =>
      el("button", { type: "button", cls, text: label, "data-action": action, "data-job": String(job.job_id) });
    if (ACTIVE.has(job.state)) actions.append(button("Pause", "pause"));
    if (["paused", "failed", "interrupted"].includes(job.state)) actions.append(button("Resume", "resume"));
    if (!["done", "cancelled"].includes(job.state)) actions.append(button("Cancel", "cancel", "small danger"));
    actions.append(button("Log", "log"));
  }
}

async function jobAction(event) {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const id = Number(target.dataset.job);
  const action = target.dataset.action;
  if (action === "log") {
    await showLog(id);
    return;
  }
  target.disabled = true;
  try {
    mergeJob(await api("POST", `/api/v1/jobs/${id}/${action}`, {}), true);
    renderJobs();
  } finally {
    target.disabled = false;
  }
}

async function showLog(id) {
  const answer = await api("GET", `/api/v1/jobs/${id}/log`);
  show($("log-title"), `Job #${id}: its log records`);
  show($("log-note"), answer.note);
  const lines = $("log-lines");
  lines.textContent = "";
  if (answer.records.length === 0) lines.append(el("div", { cls: "log-line", text: "(no record kept)" }));
  for (const record of answer.records) {
    const fields = Object.entries(record.fields || {})
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    const text = `${localTime(record.at)}  ${record.level.padEnd(7)} ${record.event}  ${fields}`;
    lines.append(el("div", { cls: `log-line log-${record.level}`, text }));
  }
  $("log-dialog").showModal();
}

// -- import -----------------------------------------------------------------------------

function follow(job) {
  if (page.followed === job.job_id) return;
  page.followed = job.job_id;
  page.chart = [];
  page.chartStart = performance.now();
  $("import-progress").hidden = false;
}

function fraction(job) {
  if (job.state === "done") return 1;
  if (job.pages_total) return Math.min(job.pages_done / job.pages_total, 1);
  return 0;
}

function renderImport(job) {
  show($("import-title-line"), `Import #${job.job_id}: ${job.state}`);
  const bar = $("import-bar");
  bar.value = fraction(job);
  show($("import-pages"), `${job.pages_done} / ${job.pages_total || "?"}`);
  show(
    $("import-counts"),
    `${n(job.tracks_imported)} imported, ${n(job.tracks_skipped)} skipped, ${n(job.tracks_errors)} errors`,
  );
  show($("import-rate"), `${job.rate_per_s} scrobbles/s`);
  show($("import-eta"), ACTIVE.has(job.state) ? duration(job.eta_s) : null);
  const trouble = $("import-trouble");
  const words = job.upstream_trouble || job.error;
  trouble.hidden = !words;
  if (words) show(trouble, words);
  page.chart.push([(performance.now() - page.chartStart) / 1000, fraction(job)]);
  drawChart();
}

function drawChart() {
  const canvas = $("import-chart");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#dde1e6";
  ctx.beginPath();
  for (const y of [0.25, 0.5, 0.75]) {
    ctx.moveTo(0, height * y);
    ctx.lineTo(width, height * y);
  }
  ctx.stroke();
  const points = page.chart;
  if (points.length === 0) return;
  const span = Math.max(points[points.length - 1][0], 1);
  ctx.strokeStyle = "#2457a6";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([t, f], i) => {
    const x = (t / span) * (width - 4) + 2;
    const y = height - 2 - f * (height - 4);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function openImport() {
  $("import-form-error").hidden = true;
  $("import-dialog").showModal();
}

function dateToSeconds(value) {
  // A date picked in the browser means that day in the browser's time zone.
  return value ? Math.floor(new Date(`${value}T00:00:00`).getTime() / 1000) : undefined;
}

async function startImport(event) {
  event.preventDefault();
  const problem = $("import-form-error");
  problem.hidden = true;
  const body = { skip_existing: $("import-skip").checked };
  if ($("import-all").checked) body.all = true;
  else body.limit = Number($("import-limit").value);
  const since = dateToSeconds($("import-since").value);
  const until = dateToSeconds($("import-until").value);
  if (since !== undefined) body.since = since;
  if (until !== undefined) body.until = until;
  try {
    const { job_id: id } = await api("POST", "/api/v1/imports", body);
    $("import-dialog").close();
    const job = await api("GET", `/api/v1/jobs/${id}`);
    // Followed whatever its state: one that failed at once (a private profile) has its
    // reason to show in the import panel all the same.
    follow(job);
    mergeJob(job, true);
    renderJobs();
  } catch (error) {
    show(problem, error.message);
    problem.hidden = false;
  }
}

function ended(job) {
  const lines = [
    ["Imported", job.tracks_imported],
    ["Skipped", job.tracks_skipped],
    ["Errors", job.tracks_errors],
  ];
  if (job.kind === "import") {
    lines.push(["Albums enriched", `${job.albums_enriched ?? 0} / ${job.total_albums_to_enrich ?? 0} to enrich`]);
    lines.push(["Total Last.fm scrobbles", job.total_scrobbles]);
  }
  lines.push(["Duration", duration(job.active_s)]);
  if (job.error) lines.push(["Error", job.error]);
  const name = job.kind === "import" ? "Import" : "Verification";
  const outcome = { done: "finished", failed: "failed", cancelled: "cancelled" }[job.state];
  notify({
    title: `${job.state === "done" ? "✔" : "✘"} ${name} #${job.job_id} ${outcome}`,
    lines,
    kind: job.state === "done" ? "success" : "failure",
    job: job.job_id,
  });
}

function notify({ title, lines, kind, job }) {
  const list = el("dl");
  for (const [label, value] of lines) {
    if (label) list.append(el("dt", { text: label }));
    list.append(el("dd", { text: typeof value === "number" ? value.toLocaleString() : value }));
  }
  const close = el("button", { type: "button", cls: "close", text: "×", title: "dismiss" });
  const notice = el("div", { cls: `notice ${kind}`, "data-job-id": job ? String(job) : "" }, close, el("h3", { text: title }), list);
  close.addEventListener("click", () => notice.remove());
  $("notices").append(notice);
}

// -- enrichment and albums --------------------------------------------------------------

async function refreshEnrichment() {
  const status = await api("GET", "/api/v1/enrichment");
  let summary = `${status.pending} pending, ${status.running} running, ${status.done} done, ${status.failed} failed`;
  if (!status.enabled) summary += " (disabled in the configuration)";
  show($("enrichment-summary"), summary);
  const body = $("enrichment-body");
  body.textContent = "";
  for (const [source, row] of Object.entries(status.by_source || {})) {
    const name = row.configured ? source : `${source} (not configured)`;
    body.append(
      el(
        "tr",
        {},
        el("td", { text: name }),
        el("td", { text: row.pending }),
        el("td", { text: row.running }),
        el("td", { text: row.done }),
        el("td", { text: row.failed }),
      ),
    );
  }
  show($("enrichment-error"), status.last_error || "none");
}

async function refreshAlbums() {
  const albums = await api("GET", "/api/v1/albums?limit=8");
  const list = $("albums-list");
  list.textContent = "";
  if (albums.length === 0) list.append(el("li", { cls: "muted", text: "No album yet." }));
  for (const album of albums) {
    const item = el("li", {}, el("span", { text: `${album.artist} — ${album.title}` }));
    item.append(el("span", { cls: "muted", text: ` (${album.listens} listens)` }));
    if (album.description) {
      const text = album.description.length > 220 ? `${album.description.slice(0, 220)}…` : album.description;
      item.append(el("span", { cls: "desc", text }));
    }
    list.append(item);
  }
}

async function refreshAll() {
  await Promise.all([refreshStatus(), refreshJobs(), refreshEnrichment(), refreshAlbums()]);
}

// -- live events, with polling while the socket is down -----------------------------------

function setLink(mode) {
  const link = $("link");
  link.className = `pill link-${mode}`;
  const words = { live: "live", connecting: "connecting…", polling: "reconnecting · polling every 5 s" };
  link.textContent = words[mode];
  document.body.dataset.link = mode;
}

function handle(message) {
  const data = message.data || {};
  switch (message.topic) {
    case "scrobble":
      showLastTrack(data);
      later("status", refreshStatus);
      later("albums", refreshAlbums, 2000);
      break;
    case "now_playing":
      show($("tracker-now"), song(data.now_playing) || "nothing");
      break;
    case "job":
      mergeJob(data, true);
      renderJobs();
      break;
    case "tracker":
    case "daemon":
      later("status", refreshStatus, 0);
      break;
    case "enrichment":
      later("enrichment", refreshEnrichment, 1000);
      later("albums", refreshAlbums, 3000);
      break;
    default:
      break;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let socket;
  try {
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events`);
  } catch (error) {
    disconnected(null); // refused before connecting (e.g. by a browser policy): retry later
    return;
  }
  page.socket = socket;
  socket.addEventListener("open", () => {
    page.reconnectMs = 1000;
    clearInterval(page.pollTimer);
    page.pollTimer = null;
    setLink("live");
    refreshAll().catch(report); // catch up on what happened while disconnected
  });
  socket.addEventListener("message", (event) => {
    try {
      handle(JSON.parse(event.data));
    } catch (error) {
      report(error);
    }
  });
  socket.addEventListener("close", () => disconnected(socket));
}

function disconnected(socket) {
  if (socket !== null && page.socket !== socket) return;
  page.socket = null;
  setLink("polling");
  if (page.pollTimer === null) {
    page.pollTimer = setInterval(() => refreshAll().catch(() => {}), POLL_MS);
  }
  setTimeout(connect, page.reconnectMs);
  page.reconnectMs = Math.min(page.reconnectMs * 2, 15000);
}

// -- wiring -----------------------------------------------------------------------------

function guarded(handler) {
  return (event) => handler(event).catch(report);
}

$("tracker-toggle").addEventListener("click", guarded(toggleTracker));
$("tracker-refresh").addEventListener("click", guarded(refreshStatus));
$("interval-form").addEventListener("submit", guarded(applyInterval));
$("interval-input").addEventListener("input", () => {
  $("interval-input").dataset.edited = "true";
});
$("import-open").addEventListener("click", openImport);
$("import-cancel").addEventListener("click", () => $("import-dialog").close());
$("import-form").addEventListener("submit", guarded(startImport));
$("import-all").addEventListener("change", () => {
  $("import-limit").disabled = $("import-all").checked;
});
$("jobs-body").addEventListener("click", guarded(jobAction));
$("log-close").addEventListener("click", () => $("log-dialog").close());

setLink("connecting");
refreshAll()
  .catch(report)
  .finally(() => {
    document.body.dataset.loaded = "true";
  });
connect();
