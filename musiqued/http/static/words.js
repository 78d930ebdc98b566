// How the Settings page words what the daemon sends: every string from it goes in as text
// (textContent, with invisible characters made visible), never parsed as HTML.

export const ACTIVE = new Set(["queued", "running"]);
export const FINAL = new Set(["done", "failed", "cancelled"]);

// -- text -------------------------------------------------------------------------------

// C0/C1 controls, line and paragraph separators and bidi controls are shown, not obeyed: a
// name cannot hide, break or reorder text.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(value) {
  return String(value).replace(INVISIBLE, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // ␀ … ␟
    if (code === 0x7f) return "\u2421"; // ␡
    return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
  });
}

export function show(node, value) {
  node.textContent = value === null || value === undefined || value === "" ? "–" : visible(value);
}

export function el(tag, props = {}, ...children) {
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

export function localTime(at) {
  if (at === null || at === undefined || at === "") return "–";
  const date = typeof at === "number" ? new Date(at * 1000) : new Date(at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleString();
}

export function duration(seconds) {
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

export function n(number) {
  return typeof number === "number" ? number.toLocaleString() : "–";
}

// A track as "artist — title — album", each name isolated in a <bdi>, so that a name in a
// right-to-left script cannot reorder the separators or the text after it.
export function song(track) {
  const parts = [track.artist, track.title];
  if (track.album) parts.push(track.album);
  const line = el("span", { cls: "song" });
  parts.forEach((part, i) => {
    if (i) line.append(" — ");
    line.append(el("bdi", { text: part }));
  });
  return line;
}

// Daemon messages name musiquectl commands in backticks. A command that a button on this page
// does is named by the button; any other is shown as code, without the backticks.
const BUTTON_FOR = { resume: "Resume (in the jobs table)", cancel: "Cancel (in the jobs table)", show: "the jobs table" };

export function message(text) {
  const node = el("span", { dir: "auto" });
  const plain = String(text).replace(/`musiquectl jobs (resume|cancel|show) \d+`/g, (_, verb) => BUTTON_FOR[verb]);
  plain.split(/`([^`]*)`/).forEach((part, i) => {
    if (part) node.append(i % 2 ? el("code", { text: part }) : visible(part));
  });
  return node;
}

export function showMessage(node, text) {
  node.textContent = "";
  node.append(message(text));
}

// A verification walks the history a day at a time; an import, a page at a time; a file
// import reads entries, in a file whose count is unknown until read.
export function progressText(job) {
  if (job.kind === "file") return `${n((job.result || {}).entries ?? 0)} entries read`;
  const total = job.pages_total ? job.pages_total.toLocaleString() : "?";
  const unit = job.kind === "verify" ? "day" : "page";
  return `${unit} ${job.pages_done.toLocaleString()} / ${total}`;
}

const SAID = new Set(["job_id", "job_kind"]); // the dialog's title says them
const MOMENT = /(_at|^window_from|^window_to|^since|^until)$/; // seconds since 1970

// One record as a person reads it: its time, its message, then its details in words.
export function logLine(record) {
  const line = el("div", { cls: `log-line log-${record.level}` });
  const at = typeof record.at === "number" ? new Date(record.at * 1000) : new Date(record.at);
  line.append(el("time", { text: Number.isNaN(at.getTime()) ? String(record.at) : at.toLocaleTimeString() }));
  const level = ["warning", "error", "critical"].includes(record.level) ? `${record.level}: ` : "";
  line.append(el("span", { text: `${level}${record.event}` }));
  const details = Object.entries(record.fields || {})
    .filter(([key, value]) => value !== null && value !== undefined && !SAID.has(key))
    .map(([key, value]) => {
      const shown = MOMENT.test(key) && typeof value === "number" ? localTime(value) : describe(value);
      return `${key.replaceAll("_", " ")}: ${shown}`;
    });
  if (details.length) line.append(el("span", { cls: "fields", text: ` — ${details.join("; ")}` }));
  return line;
}

function describe(value) {
  if (Array.isArray(value)) return value.map(describe).join(", ");
  if (value && typeof value === "object") {
    return Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k.replaceAll("_", " ")} ${describe(v)}`)
      .join(", ");
  }
  return String(value);
}

export function fraction(job) {
  if (job.state === "done") return 1;
  if (job.pages_total) return Math.min(job.pages_done / job.pages_total, 1);
  return 0;
}

// Speed and time left, or why there are none: the daemon's rate is an average over the
// time the job ran, which says nothing while it waits (paused, or retrying Last.fm).
export function pace(job) {
  const rate = `${n(job.rate_per_s)} scrobbles/s`;
  if (job.state === "paused") return ["paused", "paused"];
  if (job.state === "queued") return ["waiting to start", "–"];
  if (!ACTIVE.has(job.state)) return job.state === "done" ? [`${rate} on average`, "none: finished"] : ["–", "–"];
  if (job.upstream_trouble) return ["waiting for Last.fm", "unknown until Last.fm answers again"];
  const processed = job.tracks_imported + (job.tracks_refreshed ?? 0) + job.tracks_skipped + job.tracks_errors;
  if (job.eta_s === 0 || (typeof job.expected === "number" && processed >= job.expected)) {
    // Every scrobble counted is in; what runs now is a second look at pages that may
    // have shifted while the import ran.
    return [rate, "re-checking pages for scrobbles that moved during the import"];
  }
  if (job.eta_s === null || job.eta_s === undefined) return [rate, "–"];
  return [rate, job.eta_s < 1 ? "less than a second" : duration(job.eta_s)];
}
