// The library's pages: Overview, Top, Album, Artist, History, Year in review.
// No framework, no build step. Every name from upstream goes in as text (textContent,
// <bdi>, dir=auto), never as markup. Routes live in the hash: #/top?kind=albums&period=month.

const view = document.getElementById("view");
const problem = document.getElementById("problem");
const SVG = "http://www.w3.org/2000/svg";
const PLACEHOLDER = "/static/placeholder.svg";
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const PERIODS = { week: "This week", month: "This month", year: "This year", all: "All time", custom: "Custom" };

// -- small helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function name(text) {
  // An upstream name, isolated so a right-to-left one keeps its place in the line.
  return el("bdi", { dir: "auto", text: text ?? "" });
}

function number(n) {
  return Number(n ?? 0).toLocaleString();
}

function when(listen) {
  return listen ? new Date(listen.timestamp * 1000).toLocaleString() : "–";
}

function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function cover(url, label) {
  return el("img", { src: url || PLACEHOLDER, alt: label, loading: "lazy", width: 48, height: 48 });
}

function card(title, ...children) {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id, text: title }), ...children);
}

async function api(name, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  let response;
  try {
    response = await fetch(`/api/v1/library/${name}?${query}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch (error) {
    throw new Error("the daemon is not answering");
  }
  if (response.status === 401) {
    location.assign("/");
    throw new Error("logged out");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.detail) || `HTTP ${response.status}`);
  return data;
}

// -- periods -------------------------------------------------------------------------------

function periodBounds(period, from, to) {
  const today = new Date();
  const tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
  if (period === "week") {
    const monday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - ((today.getDay() + 6) % 7));
    return { since: isoDate(monday), until: isoDate(tomorrow) };
  }
  if (period === "month") return { since: isoDate(new Date(today.getFullYear(), today.getMonth(), 1)), until: isoDate(tomorrow) };
  if (period === "year") return { since: `${today.getFullYear()}-01-01`, until: isoDate(tomorrow) };
  if (period === "custom" && from && to) return { since: from, until: to };
  return { since: null, until: null };
}

function bucketFor(bounds) {
  if (!bounds.since) return "year";
  const days = (Date.parse(bounds.until) - Date.parse(bounds.since)) / 86400000;
  if (days <= 62) return "day";
  if (days <= 3 * 366) return "month";
  return "year";
}

function periodControls(state, onChange) {
  const select = el("select", { id: "period" },
    Object.entries(PERIODS).map(([value, label]) => el("option", { value, selected: value === state.period, text: label })));
  const from = el("input", { type: "date", id: "period-from", value: state.from || "" });
  const to = el("input", { type: "date", id: "period-to", value: state.to || "" });
  const custom = el("span", { class: "inline", hidden: state.period !== "custom" },
    el("label", { for: "period-from", text: "From" }), from, el("label", { for: "period-to", text: "to (exclusive)" }), to);
  const apply = () => onChange({ period: select.value, from: from.value, to: to.value });
  select.addEventListener("change", () => { custom.hidden = select.value !== "custom"; if (select.value !== "custom") apply(); });
  from.addEventListener("change", apply);
  to.addEventListener("change", apply);
  return el("div", { class: "controls" }, el("label", { for: "period" }, "Period", select), custom);
}

// -- charts --------------------------------------------------------------------------------

function barChart(buckets, label, caption) {
  const width = 640, height = 200, left = 44, bottom = 22;
  const max = Math.max(1, ...buckets.map((b) => b.listens));
  const step = (width - left) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => {
    const h = ((height - bottom - 10) * b.listens) / max;
    return svg("rect", { class: "bar", x: left + i * step + 1, y: height - bottom - h, width: Math.max(1, step - 2), height: h },
      svg("title", {}, document.createTextNode(`${label(b)}: ${number(b.listens)} listens`)));
  });
  const every = Math.ceil(buckets.length / 8);
  const ticks = buckets.map((b, i) => (i % every === 0
    ? svg("text", { x: left + i * step, y: height - 6 }, document.createTextNode(label(b))) : null));
  const scale = [0, max / 2, max].map((v) => svg("text", { x: 0, y: height - bottom - ((height - bottom - 10) * v) / max + 4 },
    document.createTextNode(number(Math.round(v)))));
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption },
    svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }), scale, bars, ticks);
  const rows = buckets.map((b) => el("tr", {}, el("td", { text: label(b) }), el("td", { text: number(b.listens) })));
  const numbers = el("details", {}, el("summary", { text: "The numbers" }),
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "When" }), el("th", { text: "Listens" }))), el("tbody", {}, rows))));
  return [chart, numbers];
}

function bucketLabel(bucket) {
  return (b) => (bucket === "year" ? b.date.slice(0, 4) : bucket === "month" ? b.date.slice(0, 7) : b.date);
}

function shade(n, max) {
  if (!n) return "#e8ebef";
  const level = Math.ceil((4 * n) / max);
  return ["#e8ebef", "#bcd3f2", "#7fa9e3", "#3f77c9", "#1f4f99"][level];
}

function heatmap(buckets, year) {
  const size = 12, top = 16, left = 30;
  const max = Math.max(1, ...buckets.map((b) => b.listens));
  const first = new Date(`${year}-01-01T00:00:00`);
  const offset = (first.getDay() + 6) % 7;
  const cells = buckets.map((b, i) => {
    const index = i + offset;
    return svg("rect", { x: left + Math.floor(index / 7) * size, y: top + (index % 7) * size, width: size, height: size, fill: shade(b.listens, max) },
      svg("title", {}, document.createTextNode(`${b.date}: ${number(b.listens)} listens`)));
  });
  const days = [0, 2, 4].map((d) => svg("text", { x: 0, y: top + d * size + 10 }, document.createTextNode(WEEKDAYS[d])));
  return svg("svg", { class: "chart heat", viewBox: `0 0 ${left + 54 * size} ${top + 7 * size + 4}`, role: "img", "aria-label": `Listens per day in ${year}` }, days, cells);
}

function hourGrid(buckets) {
  const size = 20, top = 16, left = 34;
  const max = Math.max(1, ...buckets.map((b) => b.listens));
  const cells = buckets.map((b) => svg("rect", { x: left + b.hour * size, y: top + b.weekday * size, width: size, height: size, fill: shade(b.listens, max) },
    svg("title", {}, document.createTextNode(`${WEEKDAYS[b.weekday]} ${b.hour}:00: ${number(b.listens)} listens`))));
  const hours = [0, 6, 12, 18].map((h) => svg("text", { x: left + h * size, y: 11 }, document.createTextNode(`${h}:00`)));
  const days = WEEKDAYS.map((d, i) => svg("text", { x: 0, y: top + i * size + 14 }, document.createTextNode(d)));
  return svg("svg", { class: "chart heat", viewBox: `0 0 ${left + 24 * size} ${top + 7 * size}`, role: "img", "aria-label": "Listens per hour of the day and weekday" }, hours, days, cells);
}

// -- lists ---------------------------------------------------------------------------------

function change(item) {
  if (item.previous_rank === null || item.previous_rank === undefined) return el("span", { class: "new", text: "new", title: "not heard in the period before" });
  const moved = item.previous_rank - item.rank;
  if (moved > 0) return el("span", { class: "up", text: `↑${moved}`, title: `was #${item.previous_rank}` });
  if (moved < 0) return el("span", { class: "down-rank", text: `↓${-moved}`, title: `was #${item.previous_rank}` });
  return el("span", { text: "=", title: "same rank" });
}

function itemLink(kind, item) {
  if (kind === "artists") return el("a", { href: `#/artist/${item.id}` }, name(item.artist));
  const title = kind === "albums" ? el("a", { href: `#/album/${item.id}` }, name(item.title)) : name(item.title);
  return el("span", {}, title, " · ", el("a", { href: `#/artist/${item.artist_id}` }, name(item.artist)));
}

function ranked(kind, items, withChange = true) {
  if (!items.length) return el("p", { class: "muted", text: "No listens in this period." });
  return el("ol", { class: "ranked" }, items.map((item) => el("li", {},
    el("span", { class: "rank", text: item.rank }),
    cover(item.image, ""),
    el("span", { class: "name" }, itemLink(kind, item)),
    el("span", { class: "count" }, `${number(item.listens)} `, withChange ? change(item) : null))));
}

function listenTable(listens) {
  if (!listens.length) return el("p", { class: "muted", text: "No listens." });
  const rows = listens.map((l) => el("tr", {},
    el("td", { class: "when", text: when(l) }),
    el("td", { class: "listen-name" }, name(l.artist)),
    el("td", { class: "listen-name" }, name(l.title)),
    el("td", { class: "listen-name" }, name(l.album || "")),
    el("td", {}, l.loved ? el("span", { class: "loved", text: "♥", title: "loved" }) : "")));
  return el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["When", "Artist", "Title", "Album", "Loved"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows)));
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([key, value]) => [el("dt", { text: key }), el("dd", {}, value)]));
}

function externalLink(url, label) {
  return url && /^https:\/\//.test(url) ? el("a", { href: url, rel: "noopener noreferrer", target: "_blank", text: label }) : "–";
}

// -- views ---------------------------------------------------------------------------------

async function overview(params) {
  const state = { period: params.get("period") || "month", from: params.get("from"), to: params.get("to") };
  const bounds = periodBounds(state.period, state.from, state.to);
  const bucket = bucketFor(bounds);
  const year = Number(params.get("year")) || new Date().getFullYear();
  const since = bounds.since || "2002-01-01";
  const until = bounds.until || isoDate(new Date(Date.now() + 86400000));
  const [timeline, hours, days, review, today] = await Promise.all([
    api("timeline", { since, until, bucket }),
    api("timeline", { since, until, bucket: "hour_of_week" }),
    api("timeline", { since: `${year}-01-01`, until: `${year + 1}-01-01`, bucket: "day" }),
    api("year", { year }),
    api("on_this_day"),
  ]);
  let buckets = timeline.buckets;
  if (!bounds.since) buckets = buckets.slice(Math.max(0, buckets.findIndex((b) => b.listens > 0)));
  const total = buckets.reduce((sum, b) => sum + b.listens, 0);
  const controls = periodControls(state, (next) => go("overview", next));
  const yearInput = el("input", { type: "number", id: "heat-year", min: 1970, max: 9998, value: year });
  yearInput.addEventListener("change", () => go("overview", { ...state, year: yearInput.value }));
  view.replaceChildren(
    el("section", { class: "card wide", "aria-labelledby": "listens-title" },
      el("h2", { id: "listens-title", text: "Listens" }), controls,
      el("p", { class: "state", text: `${number(total)} listens` }),
      barChart(buckets, bucketLabel(bucket), `Listens per ${bucket}`)),
    el("section", { class: "card wide", "aria-labelledby": "heat-title" },
      el("h2", { id: "heat-title", text: `Every day of ${year}` }),
      el("div", { class: "controls" }, el("label", { for: "heat-year" }, "Year", yearInput)),
      el("div", { class: "scroll" }, heatmap(days.buckets, year)),
      facts([["Listens", number(review.listens)], ["Artists", number(review.artists)], ["Albums", number(review.albums)], ["Tracks", number(review.tracks)]]),
      el("a", { href: `#/year/${year}`, text: `${year} in review` })),
    card("Hour of the day and weekday", el("div", { class: "scroll" }, hourGrid(hours.buckets))),
    card("On this day", today.years.length
      ? el("ul", {}, today.years.map((y) => el("li", {}, `${y.year}: ${number(y.listens)} listens — `,
        y.first.slice(0, 3).flatMap((l, i) => [i ? ", " : "", name(l.artist), " – ", name(l.title)]))))
      : el("p", { class: "muted", text: "Nothing on this day in earlier years." })),
  );
}

async function top(params) {
  const state = { kind: params.get("kind") || "artists", period: params.get("period") || "month", from: params.get("from"), to: params.get("to"), n: params.get("n") || "25" };
  const bounds = periodBounds(state.period, state.from, state.to);
  const answer = await api("top", { kind: state.kind, limit: state.n, ...bounds });
  const kind = el("select", { id: "top-kind" }, ["artists", "albums", "tracks"].map((k) => el("option", { value: k, selected: k === state.kind, text: k[0].toUpperCase() + k.slice(1) })));
  const count = el("select", { id: "top-n" }, ["10", "25", "50", "100"].map((n) => el("option", { value: n, selected: n === state.n, text: n })));
  kind.addEventListener("change", () => go("top", { ...state, kind: kind.value }));
  count.addEventListener("change", () => go("top", { ...state, n: count.value }));
  const controls = periodControls(state, (next) => go("top", { ...state, ...next }));
  controls.prepend(el("label", { for: "top-kind" }, "What", kind), el("label", { for: "top-n" }, "How many", count));
  view.replaceChildren(el("section", { class: "card wide", "aria-labelledby": "top-title" },
    el("h2", { id: "top-title", text: `Top ${state.kind}` }), controls, ranked(state.kind, answer.items, answer.previous !== null)));
}

async function album(id) {
  const a = await api("album", { id });
  view.replaceChildren(
    el("section", { class: "card wide", "aria-labelledby": "album-title" },
      el("div", { class: "hero" }, cover(a.image, `Cover of ${a.title}`),
        el("div", {}, el("h2", { id: "album-title" }, name(a.title)),
          el("p", {}, "by ", el("a", { href: `#/artist/${a.artist_id}` }, name(a.artist))),
          facts([["Listens", number(a.listens)], ["First listen", when(a.first_listen)], ["Last listen", when(a.last_listen)],
            ["Released", a.release_year ?? "–"], ["Last.fm", externalLink(a.links.lastfm, "album page")], ["Spotify", externalLink(a.links.spotify, "album page")]]),
          a.description ? el("p", { class: "description", dir: "auto", text: a.description }) : el("p", { class: "muted", text: "No description yet." })))),
    card("Tracks", el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: "Track" }), el("th", { text: "Listens" }))),
      el("tbody", {}, a.tracks.map((t) => el("tr", {}, el("td", {}, name(t.title)), el("td", { text: number(t.listens) }))))))),
    card("Listens over time", barChart(a.per_month, bucketLabel("month"), "Listens per month")),
  );
}

async function artist(id) {
  const a = await api("artist", { id });
  const albums = a.albums.slice(0, 10).map((al, i) => ({ ...al, rank: i + 1, artist: a.artist, artist_id: a.id }));
  view.replaceChildren(
    el("section", { class: "card wide", "aria-labelledby": "artist-title" },
      el("div", { class: "hero" }, cover(a.image, `Picture of ${a.artist}`),
        el("div", {}, el("h2", { id: "artist-title" }, name(a.artist)),
          facts([["Listens", number(a.listens)], ["First listen", when(a.first_listen)], ["Last listen", when(a.last_listen)],
            ["Last.fm", externalLink(a.links.lastfm, "artist page")], ["Spotify", externalLink(a.links.spotify, "artist page")]])))),
    card("Top albums", ranked("albums", albums, false)),
    card("Top tracks", ranked("tracks", a.tracks.slice(0, 10).map((t, i) => ({ ...t, rank: i + 1, artist: a.artist, artist_id: a.id })), false)),
    card("Listens over time", barChart(a.per_month, bucketLabel("month"), "Listens per month")),
  );
}

async function history(params) {
  const state = { q: params.get("q") || "", from: params.get("from") || "", to: params.get("to") || "" };
  const q = el("input", { type: "search", id: "history-q", value: state.q, placeholder: "artist, album or title" });
  const from = el("input", { type: "date", id: "history-from", value: state.from });
  const to = el("input", { type: "date", id: "history-to", value: state.to });
  const form = el("form", { class: "controls", role: "search" },
    el("label", { for: "history-q" }, "Search", q), el("label", { for: "history-from" }, "From", from),
    el("label", { for: "history-to" }, "Before (jump to a date)", to), el("button", { type: "submit", class: "primary", text: "Show" }));
  form.addEventListener("submit", (event) => { event.preventDefault(); go("history", { q: q.value, from: from.value, to: to.value }); });
  const list = el("div", { id: "history-list" });
  const more = el("button", { type: "button", id: "history-more", text: "More", hidden: true });
  view.replaceChildren(el("section", { class: "card wide", "aria-labelledby": "history-title" },
    el("h2", { id: "history-title", text: "History" }), form, list, el("div", { class: "actions" }, more)));
  const shown = [];
  let cursor = null;
  const load = async () => {
    const answer = await api("search", { q: state.q, since: state.from, until: state.to, limit: 100, cursor });
    shown.push(...answer.listens);
    cursor = answer.next_cursor;
    list.replaceChildren(listenTable(shown));
    more.hidden = !cursor;
  };
  more.addEventListener("click", () => load().catch(showProblem));
  await load();
}

async function year(params, value) {
  const chosen = Number(value) || new Date().getFullYear();
  const y = await api("year", { year: chosen });
  const input = el("input", { type: "number", id: "review-year", min: 1970, max: 9998, value: chosen });
  input.addEventListener("change", () => { location.hash = `#/year/${input.value}`; });
  const months = y.per_month.map((m) => ({ date: m.month, listens: m.listens }));
  view.replaceChildren(
    el("section", { class: "card wide", "aria-labelledby": "year-title" },
      el("h2", { id: "year-title", text: `${chosen} in review` }),
      el("div", { class: "controls" }, el("label", { for: "review-year" }, "Year", input)),
      facts([["Listens", number(y.listens)], ["Artists", number(y.artists)], ["Albums", number(y.albums)], ["Tracks", number(y.tracks)],
        ["Days with listens", number(y.days_with_listens)], ["New artists", number(y.new_artists_count)],
        ["Busiest day", y.busiest_day ? `${y.busiest_day.day} (${number(y.busiest_day.listens)} listens)` : "–"],
        ["Longest run", y.longest_streak ? `${y.longest_streak.days} days, ${y.longest_streak.first} to ${y.longest_streak.last}` : "–"]]),
      barChart(months, (m) => m.date, "Listens per month")),
    card("Top artists", ranked("artists", y.top_artists, false)),
    card("Top albums", ranked("albums", y.top_albums, false)),
    card("Top tracks", ranked("tracks", y.top_tracks, false)),
    card("First heard this year", y.new_artists.length
      ? el("ul", {}, y.new_artists.slice(0, 20).map((a) => el("li", {}, el("a", { href: `#/artist/${a.id}` }, name(a.artist)), ` — ${number(a.listens)} listens`)))
      : el("p", { class: "muted", text: "No new artists that year." })),
  );
}

// -- routing -------------------------------------------------------------------------------

function go(name, state) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) if (value) query.set(key, value);
  location.hash = `#/${name}?${query}`;
}

function showProblem(error) {
  problem.textContent = error.message;
  problem.hidden = false;
}

const TITLES = { overview: "Overview", top: "Top", history: "History", year: "Year in review", album: "Album", artist: "Artist" };

async function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = (path || "overview").split("/");
  const params = new URLSearchParams(query || "");
  const views = { overview: () => overview(params), top: () => top(params), history: () => history(params),
    year: () => year(params, arg), album: () => album(arg), artist: () => artist(arg) };
  const show = views[name] || views.overview;
  document.getElementById("view-title").textContent = TITLES[name] || "Overview";
  document.title = `musiqued · ${TITLES[name] || "Overview"}`;
  for (const link of document.querySelectorAll(".nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  problem.hidden = true;
  delete document.body.dataset.loaded;
  try {
    await show();
  } catch (error) {
    showProblem(error);
  }
  document.body.dataset.loaded = name || "overview"; // tests wait for this
}

window.addEventListener("hashchange", route);
route();
