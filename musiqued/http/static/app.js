// The Settings page. Every string from the daemon is put in the page as text
// (textContent, with control characters made visible), never parsed as HTML: words.js.

import {
  ACTIVE,
  FINAL,
  duration,
  el,
  fraction,
  localTime,
  logLine,
  message,
  n,
  pace,
  progressText,
  show,
  showMessage,
  song,
} from "./words.js";
import { fileSummaryLines, showFileJob, wireUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 5000;
const JOBS_FIRST = 10; // rows shown at first; "Show more jobs" adds JOBS_MORE
const JOBS_MORE = 20;

const page = {
  status: null,
  jobs: new Map(), // job_id → job
  jobsShown: JOBS_FIRST,
  jobsMayHaveMore: false,
  followed: null, // the import shown in the import card
  down: false, // the daemon does not answer
  trackerFailing: false, // running, but its last poll failed
  socket: null,
  pollTimer: null,
  reconnectTimer: null,
  reconnectMs: 1000,
  pending: new Map(), // debounced refreshes
};

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
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    setDown(true); // no answer at all: the daemon is stopped or unreachable
    throw new ApiError(0, "the daemon is not answering");
  }
  setDown(false);
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
  // A daemon that does not answer is one state of the page (setDown), not a notice per call.
  if (error instanceof ApiError && (error.status === 401 || error.status === 0)) return;
  notify({ title: "Something went wrong", lines: [["", error.message]], kind: "failure" });
}

function setDown(down) {
  if (page.down === down) return;
  page.down = down;
  document.body.dataset.daemon = down ? "down" : "up";
  $("down").hidden = !down;
  if (down) {
    setLink("down");
    const card = $("tracker");
    card.classList.remove("tracker-running", "tracker-stopped", "tracker-failing");
    card.classList.add("tracker-unknown");
    show($("tracker-icon"), "?");
    show($("tracker-state"), "Unknown: the daemon is not answering");
    show($("tracker-next"), null);
    show($("tracker-now"), "unknown");
    const followed = page.jobs.get(page.followed);
    if (followed && !FINAL.has(followed.state)) {
      show($("import-title-line"), `Import #${followed.job_id}: unknown while the daemon is not answering`);
      show($("import-rate"), null);
      show($("import-eta"), null);
    }
  } else {
    setLink(page.socket && page.socket.readyState === WebSocket.OPEN ? "live" : "polling");
    later("all", refreshAll, 0); // what changed meanwhile
    if (page.socket === null) reconnectNow(); // back: live again without waiting out the backoff
  }
  for (const button of document.querySelectorAll("main button")) button.disabled = down;
}

// -- tracker ----------------------------------------------------------------------------

async function refreshStatus() {
  const status = await api("GET", "/api/v1/status");
  page.status = status;
  show($("listens"), `${status.listens.toLocaleString()} listens`);
  show($("version"), `v${status.version}`);
  renderTracker(status.tracker, status.configured);
  renderMirror(status.mirror);
  for (const job of status.jobs || []) mergeJob(job, false);
  renderJobs();
}

// Running, and Last.fm answering: a tracker whose every poll fails is not shown as fine.
function trackerMode(tracker) {
  if (!tracker.running) return "stopped";
  return tracker.consecutive_failures > 0 ? "failing" : "running";
}

function renderTracker(tracker, configured) {
  const card = $("tracker");
  const running = Boolean(tracker.running);
  const mode = trackerMode(tracker);
  page.trackerFailing = mode === "failing";
  for (const name of ["running", "stopped", "failing", "unknown"]) {
    card.classList.toggle(`tracker-${name}`, name === mode);
  }
  show($("tracker-icon"), { running: "▶", stopped: "■", failing: "!" }[mode]);
  const failures = tracker.consecutive_failures;
  const states = {
    running: "● Running",
    stopped: "● Stopped",
    failing: `● Running, but Last.fm is not answering (${failures} ${failures === 1 ? "poll" : "polls"} failed in a row)`,
  };
  show($("tracker-state"), states[mode]);
  show($("tracker-interval"), `${tracker.interval_seconds} s`);
  const input = $("interval-input");
  if (document.activeElement !== input && !input.dataset.edited) {
    input.value = String(tracker.interval_seconds);
  }
  showLastTrack(tracker.last_track);
  showNowPlaying(tracker.now_playing);
  show($("tracker-next"), running ? localTime(tracker.next_poll_at) : null);
  show($("tracker-recorded"), `${tracker.scrobbles_recorded} since the daemon started`);
  let problem = tracker.last_error || "none";
  if (configured && !configured.lastfm) {
    problem = "Last.fm is not configured: set [lastfm] api_key and username";
  }
  showMessage($("tracker-error"), problem);
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
    show(node, "No listen stored yet");
    return;
  }
  node.textContent = "";
  node.append(song(track));
  if (track.timestamp) node.append(" ", el("span", { cls: "muted", text: `(${localTime(track.timestamp)})` }));
}

// What Last.fm said was playing is only known while its polls succeed: while they fail the
// track may have ended long ago.
function showNowPlaying(playing) {
  const node = $("tracker-now");
  if (page.trackerFailing) {
    show(node, "unknown while Last.fm is not answering");
    return;
  }
  if (!playing) {
    show(node, "Nothing playing right now");
    return;
  }
  node.textContent = "";
  node.append(song(playing));
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
  if (now.kind === "file") showFileJob(now);
  if (announce && before && !FINAL.has(before.state) && FINAL.has(now.state)) ended(now);
  if (announce && (now.kind === "import" || now.kind === "file")) {
    // What an import changes elsewhere on the page: the listens count, albums, the queue.
    later("status", refreshStatus, FINAL.has(now.state) ? 0 : 1000);
    later("enrichment", refreshEnrichment, 1000);
    later("albums", refreshAlbums, 3000);
  }
}

async function refreshJobs() {
  const jobs = await api("GET", `/api/v1/jobs?limit=${page.jobsShown + 1}`);
  page.jobsMayHaveMore = jobs.length > page.jobsShown;
  for (const job of jobs.slice().reverse()) mergeJob(job, true);
  if (page.followed === null) {
    // After a reload the import card shows the newest import, also one that just ended.
    const newest = jobs.find((job) => job.kind === "import");
    if (newest) {
      follow(newest);
      renderImport(page.jobs.get(newest.job_id));
    }
  }
  renderJobs();
}

async function showMoreJobs() {
  page.jobsShown += JOBS_MORE;
  await refreshJobs();
}

function renderJobs() {
  // Rows are kept and updated in place: progress events come several times a second, and
  // a row rebuilt under the pointer would swallow a click on its buttons.
  const body = $("jobs-body");
  const all = [...page.jobs.values()].sort((a, b) => b.job_id - a.job_id);
  const jobs = all.slice(0, page.jobsShown);
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-more").hidden = !(page.jobsMayHaveMore || all.length > jobs.length);
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
    if (job.error) cells[2].append(el("div", { cls: "muted" }, message(job.error)));
    if (job.upstream_trouble) cells[2].append(el("div", { cls: "warning" }, message(job.upstream_trouble)));
  }
  show(cells[3], progressText(job));
  show(
    cells[4],
    `${n(job.tracks_imported)} / ${n(job.tracks_refreshed ?? 0)} / ${n(job.tracks_skipped)} / ${n(job.tracks_errors)}`,
  );
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
  show($("log-title"), `Job #${id}: what the daemon logged`);
  show($("log-note"), answer.note);
  const lines = $("log-lines");
  lines.textContent = "";
  if (answer.records.length === 0) lines.append(el("div", { cls: "log-line", text: "Nothing logged for this job since the daemon started." }));
  for (const record of answer.records) lines.append(logLine(record));
  $("log-dialog").showModal();
}

// -- import -----------------------------------------------------------------------------

function follow(job) {
  if (page.followed === job.job_id) return;
  page.followed = job.job_id;
  $("import-progress").hidden = false;
}

function renderImport(job) {
  show($("import-title-line"), `Import #${job.job_id}: ${job.state}`);
  const bar = $("import-bar");
  bar.value = fraction(job);
  show($("import-pages"), `${job.pages_done} / ${job.pages_total || "?"}`);
  show(
    $("import-counts"),
    `${n(job.tracks_imported)} imported, ${n(job.tracks_refreshed ?? 0)} refreshed, ${n(job.tracks_skipped)} skipped, ${n(job.tracks_errors)} errors`,
  );
  const [rate, left] = pace(job);
  show($("import-rate"), rate);
  show($("import-eta"), left);
  const trouble = $("import-trouble");
  const words = job.upstream_trouble || job.error;
  trouble.hidden = !words;
  if (words) showMessage(trouble, words);
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
    showMessage(problem, error.message);
    problem.hidden = false;
  }
}

function ended(job) {
  if (job.kind === "file") {
    const lines = [...fileSummaryLines(job.result || {}), ["Duration", duration(job.active_s)]];
    if (job.error) lines.push(["Error", message(job.error)]);
    notify({
      title: `${job.state === "done" ? "✔" : "✘"} File import #${job.job_id} ${job.state === "done" ? "finished" : job.state}`,
      lines,
      kind: job.state === "done" ? "success" : "failure",
      job: job.job_id,
    });
    return;
  }
  const lines = [
    ["Imported", job.tracks_imported],
    ["Refreshed", job.tracks_refreshed ?? 0],
    ["Skipped", job.tracks_skipped],
    ["Errors", job.tracks_errors],
  ];
  if (job.kind === "import") {
    lines.push(["Albums enriched", `${job.albums_enriched ?? 0} / ${job.total_albums_to_enrich ?? 0} to enrich`]);
    lines.push(["Total Last.fm scrobbles", job.total_scrobbles]);
  }
  lines.push(["Duration", duration(job.active_s)]);
  if (job.error) lines.push(["Error", message(job.error)]);
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
    if (value instanceof Node) list.append(el("dd", {}, value));
    else list.append(el("dd", { text: typeof value === "number" ? value.toLocaleString() : value }));
  }
  const close = el("button", { type: "button", cls: "close", text: "×", title: "dismiss" });
  const notice = el("div", { cls: `notice ${kind}`, "data-job-id": job ? String(job) : "" }, close, el("h3", { text: title }), list);
  close.addEventListener("click", () => notice.remove());
  $("notices").append(notice);
}

// -- the ListenBrainz mirror ------------------------------------------------------------

const MIRROR_STATES = {
  off: "Off: set [listenbrainz] enabled and token in the configuration",
  idle: "Up to date",
  sending: "Sending",
  waiting: "Waiting for the server's rate limit",
  paused: "Paused",
  stopped: "Stopped: needs a human (fix the configuration, then reload)",
};

function renderMirror(mirror) {
  if (!mirror) return;
  show($("mirror-state"), MIRROR_STATES[mirror.state] || mirror.state);
  show($("mirror-submitted"), `${n(mirror.submitted)} listens` + (mirror.refused ? `, ${n(mirror.refused)} refused` : ""));
  show($("mirror-pending"), n(mirror.pending));
  show($("mirror-rate"), `${mirror.rate_per_s} listens/s`);
  show($("mirror-next"), mirror.next_attempt_at ? localTime(mirror.next_attempt_at) : null);
  show($("mirror-error"), mirror.last_error);
  const toggle = $("mirror-toggle");
  toggle.hidden = !mirror.enabled;
  toggle.dataset.paused = String(mirror.paused);
  toggle.textContent = mirror.paused ? "Resume" : "Pause";
}

async function toggleMirror() {
  const paused = $("mirror-toggle").dataset.paused === "true";
  await api("POST", `/api/v1/mirror/${paused ? "resume" : "pause"}`, {});
  await refreshStatus();
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
  // Only trouble that lasts: a source that recovered is paused no more, and blocked only
  // until a reload; its old errors are history (the failed column counts what they cost).
  const current = Object.entries(status.by_source || {})
    .filter(([, row]) => row.last_error && (row.blocked || row.paused_until))
    .map(([source, row]) => `${source}: ${row.blocked || row.last_error}`);
  const node = $("enrichment-error");
  node.className = current.length ? "warning" : "";
  if (current.length) showMessage(node, current.join("; "));
  else show(node, status.failed ? `none now (${n(status.failed)} failed earlier)` : "none");
}

async function refreshAlbums() {
  const albums = await api("GET", "/api/v1/albums?limit=8");
  const list = $("albums-list");
  list.textContent = "";
  $("albums-empty").hidden = albums.length > 0;
  for (const album of albums) {
    const cover = el("img", { cls: "cover", alt: "", loading: "lazy", width: 56, height: 56 });
    cover.src = album.image || "/static/placeholder.svg";
    const words = el("div");
    words.append(el("bdi", { text: album.artist }), " — ", el("bdi", { text: album.title }));
    words.append(" ", el("span", { cls: "muted", text: `(${n(album.listens)} listens)` }));
    if (album.description) {
      const text = album.description.length > 220 ? `${album.description.slice(0, 220)}…` : album.description;
      words.append(el("span", { cls: "desc", dir: "auto", text }));
    }
    list.append(el("li", {}, cover, words));
  }
}

async function refreshAll() {
  await Promise.all([refreshStatus(), refreshJobs(), refreshEnrichment(), refreshAlbums()]);
}

// -- live events, with polling while the socket is down -----------------------------------

function setLink(mode) {
  const link = $("link");
  link.className = `pill link-${mode}`;
  const words = {
    live: "live",
    connecting: "connecting…",
    polling: "reconnecting · polling every 5 s",
    down: "daemon not answering",
  };
  link.textContent = words[mode];
  // The live link's own state, apart from whether the daemon answers (data-daemon).
  if (mode !== "down") document.body.dataset.link = mode;
  else if (document.body.dataset.link === "live") document.body.dataset.link = "polling";
}

function handle(event) {
  const data = event.data || {};
  switch (event.topic) {
    case "scrobble":
      showLastTrack(data);
      later("status", refreshStatus);
      later("albums", refreshAlbums, 2000);
      break;
    case "now_playing":
      showNowPlaying(data.now_playing);
      break;
    case "job":
      mergeJob(data, true);
      renderJobs();
      break;
    case "tracker":
    case "daemon":
      later("status", refreshStatus, 0);
      break;
    case "mirror":
      later("status", refreshStatus, 1000);
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
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
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
  socket.addEventListener("close", () => {
    const wasLive = opened && page.socket === socket;
    disconnected(socket);
    // A live link that closes most often means the daemon stopped: ask now, so the page
    // says so at once rather than at the next poll.
    if (wasLive) refreshAll().catch(() => {});
  });
}

function disconnected(socket) {
  if (socket !== null && page.socket !== socket) return;
  page.socket = null;
  setLink(page.down ? "down" : "polling");
  if (page.pollTimer === null) {
    page.pollTimer = setInterval(() => refreshAll().catch(() => {}), POLL_MS);
  }
  page.reconnectTimer = setTimeout(connect, page.reconnectMs);
  page.reconnectMs = Math.min(page.reconnectMs * 2, 15000);
}

function reconnectNow() {
  clearTimeout(page.reconnectTimer);
  page.reconnectMs = 1000;
  connect();
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
$("jobs-more").addEventListener("click", guarded(showMoreJobs));
$("log-close").addEventListener("click", () => $("log-dialog").close());
$("mirror-toggle").addEventListener("click", guarded(toggleMirror));
wireUpload(async (id) => {
  mergeJob(await api("GET", `/api/v1/jobs/${id}`), true);
  renderJobs();
});

setLink("connecting");
refreshAll()
  .catch(report)
  .finally(() => {
    document.body.dataset.loaded = "true";
  });
connect();
