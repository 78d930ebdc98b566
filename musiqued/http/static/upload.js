// The Settings page's "Import files" card: the files picked are uploaded to the daemon
// (POST /api/v1/imports/files) and imported as `musiquectl import-file` imports them; the
// card then follows that job (app.js hands it the job's updates) and shows its summary.

import { FINAL, el, n, show, showMessage } from "./words.js";

const $ = (id) => document.getElementById(id);
const card = { followed: null, sending: false };

// What became of a file import's entries: the counts add up to the entries read.
export function fileSummaryLines(summary) {
  const lines = [
    ["Entries read", summary.entries ?? 0],
    ["Added", summary.added ?? 0],
    ["Already stored", summary.already_stored ?? 0],
  ];
  for (const [reason, count] of Object.entries(summary.skipped || {}).sort()) {
    lines.push([`Skipped (${reason.replaceAll("_", " ")})`, count]);
  }
  lines.push(["Unreadable", summary.unreadable ?? 0]);
  if (summary.undone) lines.push(["Undone", summary.undone]);
  return lines;
}

function showSummary(lines) {
  const list = $("upload-summary");
  list.textContent = "";
  for (const [label, value] of lines) {
    list.append(el("dt", { text: label }), el("dd", { text: typeof value === "number" ? n(value) : value }));
  }
}

function showState(words, bar) {
  $("upload-progress").hidden = false;
  show($("upload-state"), words);
  const progress = $("upload-bar");
  if (bar === null) progress.removeAttribute("value"); // under way, how far unknown
  else progress.value = bar;
}

// The file job this card started, at each of its updates (app.js calls it for every
// file job it learns of).
export function showFileJob(job) {
  if (job.job_id !== card.followed) return;
  const summary = job.result || {};
  const ended = FINAL.has(job.state);
  const read = ended ? "" : `: ${n(summary.entries ?? 0)} entries read`;
  showState(`File import #${job.job_id}: ${job.state}${read}`, ended ? 1 : null);
  showSummary(fileSummaryLines(summary));
  const problem = $("upload-error");
  problem.hidden = !job.error;
  if (job.error) showMessage(problem, job.error);
}

function refuse(words) {
  const problem = $("upload-error");
  showMessage(problem, words);
  problem.hidden = false;
}

// The upload itself, through XMLHttpRequest: fetch cannot tell how much of a body is sent.
function send(query, body, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/api/v1/imports/files?${query}`);
    request.responseType = "json";
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress(event.loaded / event.total);
    });
    request.addEventListener("load", () => resolve({ status: request.status, data: request.response }));
    request.addEventListener("error", () =>
      reject(
        new Error(
          "the upload did not reach the daemon: it may be stopped, the connection dropped, or the files are far over its upload limit ([http] max_upload_mb)",
        ),
      ),
    );
    request.send(body);
  });
}

async function upload(event, started) {
  event.preventDefault();
  if (card.sending) return;
  $("upload-error").hidden = true;
  const picked = [...$("upload-files").files];
  if (picked.length === 0) {
    refuse("Pick one or more files first.");
    return;
  }
  const body = new FormData();
  for (const file of picked) body.append("file", file, file.name);
  const options = new URLSearchParams({
    format: $("upload-format").value,
    dry_run: String($("upload-dry-run").checked),
  });
  // A .scrobbler.log without a zone was written in local time: this browser's, most likely.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) options.set("zone", zone);
  const files = picked.length === 1 ? "1 file" : `${picked.length} files`;
  card.sending = true;
  $("upload-start").disabled = true;
  card.followed = null;
  $("upload-summary").textContent = "";
  showState(`Sending ${files}…`, 0);
  try {
    const { status, data } = await send(options.toString(), body, (part) =>
      showState(`Sending ${files}… ${Math.floor(part * 100)} %`, part),
    );
    if (status === 401) {
      location.reload(); // the session ended: back to the login form
      return;
    }
    if (status >= 400) {
      $("upload-progress").hidden = true;
      refuse((data && data.detail) || `HTTP ${status}`);
      return;
    }
    if (data.dry_run) {
      showState(`Dry run of ${files}: nothing stored`, 1);
      showSummary(fileSummaryLines(data));
      if (data.error) refuse(data.error);
      return;
    }
    card.followed = data.job_id;
    showState(`File import #${data.job_id}: queued`, null);
    await started(data.job_id);
  } catch (error) {
    $("upload-progress").hidden = true;
    refuse(error.message);
  } finally {
    card.sending = false;
    $("upload-start").disabled = false;
  }
}

// ``started(job_id)``: what the page does with a job the upload started (shows it).
export function wireUpload(started) {
  $("upload-form").addEventListener("submit", (event) => upload(event, started));
}
