// The hooklog dashboard: a client of the admin API. The token lives in session storage and
// travels only as `Authorization: Bearer`; the live feed is read with fetch for the same reason.
// Every value from the API is put into the page as text (never as HTML).
"use strict";

const TOKEN_KEY = "hooklog.token";
let session = null; // {name, access}
let feed = null; // AbortController of the live feed
let lastPosition = 0; // HOOKLOG_EVENTS position seen on the feed
const series = { events: [], deliveries: [], syncsOk: [], syncsFailed: [] };
const lag = []; // {t, n}: events the read models were behind, sampled from /metrics

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const canWrite = () => session && session.access === "write";
const short = (sha) => (sha ? sha.slice(0, 7) : "—");
const when = (t) => (t ? new Date(t).toLocaleString() : "—");
const chip = (text) => h("span", { class: `chip ${text}` }, text);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {
    method,
    headers: Object.assign(
      { Authorization: `Bearer ${token}` },
      body === undefined ? {} : { "Content-Type": "application/json" },
    ),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const error = (json && json.error) || {};
    if (response.status === 401 && path !== "/v1/admin/session") logout("The token was refused; log in again.");
    throw new ApiError(response.status, error.code || "http_error", error.message || `${response.status} ${response.statusText}`);
  }
  return json === null ? text : json;
}

function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = err.message || String(err);
}

// ---- login ------------------------------------------------------------------------------

async function login(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    session = await api("GET", "/v1/admin/session");
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    const message = err.status === 401 ? "That token is not one hooklog knows." : `Cannot log in: ${err.message}`;
    const box = $("login-error");
    box.hidden = false;
    box.textContent = message;
    return;
  }
  $("login-error").hidden = true;
  $("login").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `${session.name} (${session.access === "write" ? "read-write" : "read-only"})`;
  document.body.dataset.access = session.access;
  follow();
  sampleLag();
  route();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  installSlot.replaceChildren();
  pickerBox.replaceChildren();
  session = null;
  if (feed) feed.abort();
  feed = null;
  $("app").hidden = true;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("token").value = "";
  const box = $("login-error");
  box.hidden = !message;
  box.textContent = message || "";
  $("token").focus();
}

// ---- live feed --------------------------------------------------------------------------

let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => route({ quiet: true, minPosition: lastPosition || undefined }), 150);
}

function bucket(list, amount) {
  const second = Math.floor(Date.now() / 1000);
  const last = list[list.length - 1];
  if (last && last.t === second) last.n += amount;
  else list.push({ t: second, n: amount });
  while (list.length && list[0].t < second - 59) list.shift();
}

function draw(canvas, lists, colors) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const now = Math.floor(Date.now() / 1000);
  const per = width / 60;
  let max = 1;
  for (const list of lists) for (const b of list) max = Math.max(max, b.n);
  lists.forEach((list, i) => {
    ctx.fillStyle = colors[i];
    for (const b of list) {
      const x = (59 - (now - b.t)) * per;
      const bar = (b.n / max) * (height - 2);
      ctx.fillRect(x + (i * per) / lists.length, height - bar, per / lists.length, bar);
    }
  });
}

function redraw() {
  for (const list of Object.values(series)) bucket(list, 0);
  draw($("chart-events"), [series.events], ["#0969da"]);
  draw($("chart-deliveries"), [series.deliveries], ["#8250df"]);
  draw($("chart-syncs"), [series.syncsOk, series.syncsFailed], ["#1a7f37", "#cf222e"]);
}
setInterval(() => { if (session) redraw(); }, 1000);

// Projection lag is a gauge of the read models, not an event: it is read from the open
// `/metrics` every 5 s (the largest lag of the two projections).
async function sampleLag() {
  if (!session) return;
  try {
    const text = await (await fetch("/metrics")).text();
    let behind = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("hooklog_projection_lag_events{")) behind = Math.max(behind, Number(line.split(" ").pop()) || 0);
    }
    lag.push({ t: Math.floor(Date.now() / 1000), n: behind });
    while (lag.length && lag[0].t < Math.floor(Date.now() / 1000) - 59) lag.shift();
    const canvas = $("chart-lag");
    canvas.dataset.latest = String(behind);
    canvas.title = `${behind} events behind`;
    draw(canvas, [lag], ["#9a6700"]);
  } catch (_) { /* the next sample tries again */ }
}
setInterval(sampleLag, 5000);

// A target's sync state, shown the moment its event arrives (the read model follows).
const LIVE_STATUS = { SyncRequested: "queued", SyncQueued: null, SyncStarted: "running", SyncFailed: "failed" };

function showLiveStatus(event) {
  if (event.aggregate_type !== "ConnectorTarget") return;
  let status = LIVE_STATUS[event.event_type];
  if (event.event_type === "SyncCompleted") {
    const body = Object.values(event.payload || {})[0] || {};
    status = body.status || "completed";
  }
  if (!status) return;
  for (const row of document.querySelectorAll(`tr[data-key="${CSS.escape(event.aggregate_id)}"]`)) {
    const chipEl = row.querySelector("[data-field=status]");
    if (chipEl && !["removed", "disabled"].includes(chipEl.textContent)) {
      chipEl.textContent = status;
      chipEl.className = `chip ${status}`;
    }
  }
}

function onEvent(event) {
  lastPosition = Math.max(lastPosition, event.position || 0);
  showLiveStatus(event);
  bucket(series.events, 1);
  if (event.aggregate_type === "Delivery") bucket(series.deliveries, 1);
  if (event.event_type === "SyncCompleted") bucket(series.syncsOk, 1);
  if (event.event_type === "SyncFailed") bucket(series.syncsFailed, 1);
  scheduleRefresh();
}

async function follow() {
  if (feed) feed.abort();
  const controller = new AbortController();
  feed = controller;
  const state = $("live-state");
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
      if (lastPosition) headers["Last-Event-ID"] = String(lastPosition);
      // New events only at first; after a drop, from the last one seen.
      const response = await fetch("/v1/admin/feed", { headers, signal: controller.signal });
      if (!response.ok || !response.body) throw new Error(`feed answered ${response.status}`);
      state.textContent = "live";
      state.className = "chip live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data) {
            try { onEvent(JSON.parse(data)); } catch (_) { /* a comment or keep-alive */ }
          }
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    state.textContent = "reconnecting";
    state.className = "chip offline";
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- views ------------------------------------------------------------------------------

function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-ok").focus();
  });
}

async function act(label, run) {
  try {
    showError(null);
    const receipt = await run();
    if (receipt && receipt.position) lastPosition = Math.max(lastPosition, receipt.position);
    await route({ quiet: true, minPosition: receipt && receipt.position });
  } catch (err) {
    showError(new Error(`${label}: ${err.message}`));
  }
}

function table(columns, rows, render) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => {
      const cells = render(row);
      return h("tr", { dataset: row.__key ? { key: row.__key } : {} },
        cells.map((cell, i) => (cell instanceof HTMLElement && cell.tagName === "TD" ? cell : h("td", { "data-label": columns[i] }, cell))));
    })));
}

const query = (params) => {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? `?${new URLSearchParams(entries)}` : "";
};

// Connect GitHub: a link to the App's install page with a state hooklog issued; GitHub sends
// the admin back to /github/setup, which checks it and connects the installation.
// Kept across the refreshes live events cause: the link and the picker stay where they are.
const installSlot = h("span", { id: "install-slot" });
const pickerBox = h("section", { id: "picker" });

function connectGithub() {
  if (!canWrite()) return null;
  const slot = installSlot;
  const button = h("button", { type: "button", id: "connect-github", onclick: async () => {
    try {
      showError(null);
      const link = await api("POST", "/v1/admin/github/install");
      slot.replaceChildren(" ", h("a", { id: "install-link", href: link.url, rel: "noreferrer" }, "Continue on GitHub to install the App"),
        h("span", { class: "muted" }, ` (the link works once, until ${when(link.expires_at)})`));
    } catch (err) {
      showError(new Error(`Connect GitHub: ${err.message}`));
    }
  } }, "Connect GitHub");
  return h("p", {}, button, slot);
}

// The repositories an installation gave the App, each with a button to track its default branch.
async function showPicker(instance) {
  const box = pickerBox;
  box.replaceChildren(h("p", { class: "muted" }, `Asking GitHub for the repositories of installation ${instance.installation_id}…`));
  try {
    const [repositories, targets] = await Promise.all([
      api("GET", `/v1/admin/instances/${encodeURIComponent(instance.instance_id)}/repositories`),
      api("GET", `/v1/admin/targets${query({ instance: instance.instance_id, limit: 500 })}`),
    ]);
    const tracked = new Set(targets.items.filter((t) => t.status !== "removed").map((t) => `${t.repository_id}/${t.branch}`));
    box.replaceChildren(h("h3", {}, `Repositories of installation ${instance.installation_id}`),
      repositories.length ? table(["Repository", "Default branch", ""], repositories, (r) => [
        r.full_name, r.default_branch,
        tracked.has(`${r.id}/${r.default_branch}`) ? h("span", { class: "chip completed" }, "tracked")
          : h("button", { type: "button", "data-action": "track", "data-repository": r.full_name, onclick: () => act("track", () => api("POST", "/v1/admin/targets", {
            installation_id: instance.installation_id, repository_id: r.id, repository: r.full_name, branch: r.default_branch,
          })).then(() => showPicker(instance)) }, `Track ${r.default_branch}`),
      ]) : h("p", { class: "empty" }, "The installation gave the App no repository: choose some in the App's settings on GitHub."));
  } catch (err) {
    box.replaceChildren(h("p", { class: "error" }, `Cannot list the repositories: ${err.message}`));
  }
}

async function instancesView(opts) {
  const page = await api("GET", `/v1/admin/instances${query({ limit: 500, min_position: opts.minPosition })}`);
  const items = page.items;
  if (!items.length) {
    return [h("h2", {}, "Instances"), connectGithub(), h("p", { class: "empty" },
      "No installation yet: connect GitHub (install the App on an account or organization); GitHub's installation webhook connects it too.")];
  }
  return [h("h2", {}, "Instances"), connectGithub(), table(
    ["Installation", "Account", "Status", "Health", "Repositories", "Targets", "Last delivery", "Auto-track", ""],
    items,
    (i) => [
      String(i.installation_id), i.account || "—", chip(i.status), chip(i.health),
      String((i.repositories || []).length), String(i.targets),
      i.last_delivery_at ? when(i.last_delivery_at) : "—",
      canWrite()
        ? h("input", { type: "checkbox", "aria-label": `auto-track ${i.instance_id}`, checked: i.auto_track,
            onchange: (e) => act("auto-track", () => api("PATCH", `/v1/admin/instances/${encodeURIComponent(i.instance_id)}`, { auto_track: e.target.checked })) })
        : (i.auto_track ? "on" : "off"),
      canWrite() && !["disconnected", "deleted"].includes(i.status)
        ? h("td", { class: "actions" }, h("button", { type: "button", "data-action": "repositories", onclick: () => showPicker(i) }, "Repositories"), h("button", { type: "button", class: "danger", "data-action": "disconnect",
            onclick: async () => {
              const targets = await api("GET", `/v1/admin/targets${query({ instance: i.instance_id, limit: 500 })}`);
              const names = targets.items.filter((t) => t.status !== "removed").map((t) => `${t.repository}@${t.branch}`);
              const text = `Disconnect installation ${i.installation_id} (${i.account || "no account"})? ` +
                (names.length ? `Its ${names.length} target(s) will be removed: ${names.join(", ")}.` : "It has no targets.");
              if (await confirmAction(text)) act("disconnect", () => api("DELETE", `/v1/admin/instances/${encodeURIComponent(i.instance_id)}`));
            } }, "Disconnect"))
        : "",
    ]), pickerBox];
}

function targetRow(t) {
  // Idle shows how the last sync ended (completed, partial), or idle before any.
  const status = t.status === "idle" ? (t.last_sync_status || "idle") : t.status;
  const counts = t.last_counts ? `+${t.last_counts.created} ~${t.last_counts.updated} -${t.last_counts.deleted}` : "—";
  const actions = [];
  if (canWrite() && t.status !== "removed") {
    actions.push(h("button", { type: "button", "data-action": "sync", onclick: () => act("sync", () => api("POST", `/v1/admin/targets/${t.target_id}/sync`, {})) }, "Sync"));
    if (t.last_sync_status === "failed" && t.last_sync_id) {
      actions.push(h("button", { type: "button", "data-action": "retry", onclick: () => act("retry", () => api("POST", `/v1/admin/syncs/${t.last_sync_id}/retry`, {})) }, "Retry"));
    }
    actions.push(h("button", { type: "button", class: "danger", "data-action": "remove", onclick: async () => {
      if (await confirmAction(`Remove the target ${t.repository}@${t.branch}? Its synced files stay in the history; it stops following the branch.`)) {
        act("remove", () => api("DELETE", `/v1/admin/targets/${t.target_id}`));
      }
    } }, "Remove"));
  }
  return [
    h("a", { href: `#target/${t.target_id}` }, t.repository), t.branch,
    h("span", { class: `chip ${status}`, "data-field": "status" }, status),
    h("code", { "data-field": "synced" }, short(t.last_synced_sha)),
    h("code", { "data-field": "requested" }, short(t.last_requested_sha)),
    counts,
    canWrite() && t.status !== "removed"
      ? h("input", { type: "checkbox", "aria-label": `auto-sync ${t.repository}@${t.branch}`, checked: t.auto_sync,
          onchange: (e) => act("auto-sync", () => api("PATCH", `/v1/admin/targets/${t.target_id}`, { auto_sync: e.target.checked })) })
      : (t.auto_sync ? "on" : "off"),
    h("td", { class: "actions" }, actions),
  ];
}

async function targetsView(opts) {
  const page = await api("GET", `/v1/admin/targets${query({ limit: 500, min_position: opts.minPosition })}`);
  const items = page.items.map((t) => Object.assign(t, { __key: t.target_id }));
  if (!items.length) {
    return [h("h2", {}, "Targets"), h("p", { class: "empty" },
      "No target yet: track a branch with `hooklog targets track`, the admin API, or turn on auto-track for an instance.")];
  }
  return [h("h2", {}, "Targets"), table(["Repository", "Branch", "Status", "Synced", "Requested", "Last sync", "Auto-sync", ""], items, targetRow)];
}

async function targetView(id, opts) {
  const mp = query({ min_position: opts.minPosition });
  const [t, syncs, discovery, files] = await Promise.all([
    api("GET", `/v1/admin/targets/${id}${mp}`),
    api("GET", `/v1/admin/targets/${id}/syncs${query({ limit: 50, min_position: opts.minPosition })}`),
    api("GET", `/v1/admin/targets/${id}/discovery`).catch(() => null),
    api("GET", `/v1/admin/targets/${id}/files${query({ limit: 200 })}`).catch(() => ({ items: [] })),
  ]);
  const filters = t.path_filters || {};
  const parts = [h("h2", {}, `${t.repository}@${t.branch}`), table(["Repository", "Branch", "Status", "Synced", "Requested", "Last sync", "Auto-sync", ""], [t], targetRow)];
  parts.push(h("p", { class: "muted" }, `Path filters: include ${(filters.include || []).join(", ") || "everything"}; exclude ${(filters.exclude || []).join(", ") || "nothing"}`));
  if (canWrite() && t.status !== "removed") {
    const include = h("input", { type: "text", id: "filter-include", value: (filters.include || []).join(", ") });
    const exclude = h("input", { type: "text", id: "filter-exclude", value: (filters.exclude || []).join(", ") });
    const split = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
    parts.push(h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      act("path filters", () => api("PATCH", `/v1/admin/targets/${t.target_id}`, { path_filters: { include: split(include.value), exclude: split(exclude.value) } }));
    } }, h("label", { for: "filter-include" }, "Include globs", include), h("label", { for: "filter-exclude" }, "Exclude globs", exclude), h("button", { type: "submit" }, "Save filters")));
  }
  parts.push(h("h3", {}, "Sync history"));
  parts.push(syncs.items.length ? table(["Requested", "Head", "Reason", "Status", "Created", "Updated", "Deleted", "Skipped", "Failures"], syncs.items, (s) => [
    when(s.requested_at), h("code", {}, short(s.head_sha)), s.reason, chip(s.status),
    String(s.created), String(s.updated), String(s.deleted), String(s.skipped),
    (s.failures || []).length ? h("ul", {}, s.failures.map((f) => h("li", {}, h("code", {}, f.path), ` ${f.reason}`))) : (s.error || "—"),
  ]) : h("p", { class: "empty" }, "No sync yet: push to the branch, or press Sync."));
  parts.push(h("div", { class: "grid2" },
    h("div", {}, h("h3", {}, "Discovery"), discovery ? h("pre", {}, JSON.stringify(discovery, null, 2)) : h("p", { class: "empty" }, "Nothing discovered yet.")),
    h("div", {}, h("h3", {}, "Files"), files.items.length ? h("ul", {}, files.items.map((f) => h("li", {}, h("code", {}, f.path), ` ${f.size ?? ""}`))) : h("p", { class: "empty" }, "No file synced yet."))));
  return parts;
}

async function deliveriesView(opts, params) {
  const filters = { event: params.get("event"), outcome: params.get("outcome"), installation: params.get("installation"), since: params.get("since"), until: params.get("until") };
  const page = await api("GET", `/v1/admin/deliveries${query(Object.assign({ limit: 100 }, filters))}`);
  const field = (name, label, attrs) => h("label", { for: `f-${name}` }, label, h("input", Object.assign({ id: `f-${name}`, name, type: "text", value: filters[name] || "" }, attrs || {})));
  const search = h("input", { id: "f-id", type: "search", placeholder: "delivery id" });
  const form = h("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    if (search.value.trim()) { location.hash = `#delivery/${encodeURIComponent(search.value.trim())}`; return; }
    const data = new FormData(e.target);
    const next = new URLSearchParams();
    for (const [k, v] of data) if (v && k !== "id") next.set(k, v);
    location.hash = `#deliveries${next.toString() ? `?${next}` : ""}`;
  } }, h("label", { for: "f-id" }, "Delivery id", search), field("event", "Event"), field("outcome", "Outcome"), field("installation", "Installation"), field("since", "Since (RFC 3339)"), field("until", "Until"), h("button", { type: "submit" }, "Search"));
  const body = page.items.length ? table(["Received", "Delivery", "Event", "Repository", "Outcome"], page.items, (d) => [
    when(d.received_at), h("a", { href: `#delivery/${encodeURIComponent(d.delivery_id)}` }, d.delivery_id),
    d.action ? `${d.event}.${d.action}` : d.event, d.repository || "—", chip(d.outcome),
  ]) : h("p", { class: "empty" }, "No delivery matches: GitHub's deliveries appear here once the ingress stores them.");
  return [h("h2", {}, "Deliveries"), form, body];
}

async function deliveryView(id) {
  // The delivery's fields, what it caused, its headers and payload, all at the top level.
  const d = await api("GET", `/v1/admin/deliveries/${encodeURIComponent(id)}`);
  return [
    h("h2", {}, `Delivery ${d.delivery_id}`),
    h("p", {}, `${d.event}${d.action ? "." + d.action : ""} · stream sequence ${d.stream_sequence} · `, chip(d.outcome), d.outcome_detail ? ` ${d.outcome_detail}` : ""),
    h("h3", {}, "What it caused"),
    d.caused.length ? table(["Position", "Aggregate", "Event"], d.caused, (c) => [String(c.position), `${c.aggregate_type} ${c.aggregate_id}`, c.event_type]) : h("p", { class: "empty" }, "Nothing (yet)."),
    h("h3", {}, "Stored headers"), h("pre", {}, JSON.stringify(d.headers, null, 2)),
    h("h3", {}, "Raw payload"), h("pre", { id: "payload" }, d.payload !== null && d.payload !== undefined ? JSON.stringify(d.payload, null, 2) : d.payload_base64 || ""),
  ];
}

function notice(text) {
  const box = $("notice");
  box.hidden = !text;
  box.textContent = text || "";
}

async function deadLettersView() {
  const page = await api("GET", "/v1/admin/dead-letters?limit=200");
  return [h("h2", {}, "Dead letters"), page.items.length ? table(["Recorded", "Delivery", "Event", "Reason", "Attempts", ""], page.items, (d) => [
    when(d.recorded_at), h("a", { href: `#delivery/${encodeURIComponent(d.delivery_id)}` }, d.delivery_id), d.event, d.reason, String(d.attempts),
    canWrite() ? h("button", { type: "button", "data-action": "redrive", onclick: () => act("redrive", async () => {
      const done = await api("POST", `/v1/admin/dead-letters/${d.stream_sequence}/redrive`);
      notice(`Redrove ${done.delivery_id}: ${done.outcome}${done.detail ? ` (${done.detail})` : ""}`);
    }) }, "Redrive") : "",
  ]) : h("p", { class: "empty" }, "No dead letter: every stored delivery was processed or ignored.")];
}

async function githubView(opts) {
  const page = await api("GET", `/v1/admin/github/deliveries${query({ limit: 200, min_position: opts.minPosition })}`);
  const parts = [h("h2", {}, "GitHub-side deliveries hooklog lacked")];
  if (canWrite()) {
    parts.push(h("p", {}, h("button", { type: "button", "data-action": "redeliver-missing", onclick: () => act("redeliver missing", () => api("POST", "/v1/admin/github/deliveries/redeliver-missing")) }, "Redeliver every missing one")));
  }
  parts.push(page.items.length ? table(["Found", "GUID", "Event", "GitHub said", "Status", "Asked", "Why", ""], page.items, (g) => [
    when(g.found_at), h("code", {}, g.guid), g.event, `${g.github_status_code} ${g.github_status}`, chip(g.status), String(g.attempts), g.reason || g.last_error || "—",
    canWrite() && g.status !== "arrived" ? h("button", { type: "button", "data-action": "redeliver", onclick: () => act("redeliver", () => api("POST", `/v1/admin/github/deliveries/${encodeURIComponent(g.guid)}/redeliver`)) }, "Redeliver") : "",
  ]) : h("p", { class: "empty" }, "Nothing missing: every delivery in the GitHub App's log is on the stream (or the reconciler has not run: it needs the GitHub App settings)."));
  return parts;
}

// Repositories connected without the App: connect one (hooklog creates its webhook), retry a
// failed creation, disconnect; their CI incidents (live: the feed refreshes the view) and pull
// requests. The token field is a password input, sent once and never shown again.
const connectBox = h("section", { id: "connect-repository" });

function connectRepositoryForm() {
  if (!canWrite()) return null;
  if (connectBox.childElementCount) return connectBox;
  const field = (label, input) => h("label", {}, label, " ", input);
  const provider = h("select", { name: "provider", id: "repo-provider" }, h("option", { value: "github" }, "GitHub"), h("option", { value: "gitlab" }, "GitLab"));
  const repository = h("input", { type: "text", name: "repository", id: "repo-name", required: true, placeholder: "owner/name or group/project", autocomplete: "off" });
  const branch = h("input", { type: "text", name: "branch", id: "repo-branch", required: true, value: "main", autocomplete: "off" });
  const token = h("input", { type: "password", name: "token", id: "repo-token", required: true, autocomplete: "off" });
  const form = h("form", { id: "connect-form", onsubmit: (e) => {
    e.preventDefault();
    act("connect repository", async () => {
      const done = await api("POST", "/v1/admin/repositories", { provider: provider.value, repository: repository.value.trim(), branch: branch.value.trim(), token: token.value });
      token.value = "";
      repository.value = "";
      notice(`Connected ${done.connection_id}: hooklog is creating its webhook (${done.hook_url}).`);
      return done;
    });
  } }, field("Provider", provider), field("Repository", repository), field("Branch", branch), field("Token", token),
    h("button", { type: "submit", id: "connect-submit" }, "Connect"));
  connectBox.replaceChildren(h("h3", {}, "Connect a repository without the App"), form,
    h("p", { class: "muted" }, "GitHub: a token with admin:repo_hook (or webhook write); GitLab: a project token with api. It is sealed, never shown again."));
  return connectBox;
}

async function repositoriesView(opts) {
  const [connections, incidents, pulls] = await Promise.all([
    api("GET", `/v1/admin/repositories${query({ limit: 200, min_position: opts.minPosition })}`),
    api("GET", "/v1/admin/incidents?limit=100"),
    api("GET", "/v1/admin/pull-requests?limit=50"),
  ]);
  const parts = [h("h2", {}, "Repositories")];
  parts.push(connections.items.length ? table(["Connected", "Provider", "Repository", "Branch", "Status", "Webhook", "Why", ""], connections.items.map((c) => ({ ...c, __key: c.connection_id })), (c) => [
    when(c.connected_at), c.provider, c.repository, c.branch, chip(c.status), c.hook_id ? `#${c.hook_id}${c.adopted ? " (adopted)" : ""}` : "—", c.last_error || "—",
    canWrite() && c.status !== "disconnected" ? h("td", { class: "actions" },
      c.status === "failed" ? h("button", { type: "button", "data-action": "retry-webhook", onclick: () => act("retry", () => api("POST", `/v1/admin/repositories/${c.connection_id}/retry`)) }, "Retry") : "",
      ["disconnecting", "delete_failed"].includes(c.status) ? "" : h("button", { type: "button", class: "danger", "data-action": "disconnect-repository", onclick: async () => {
        if (await confirmAction(`Disconnect ${c.repository} (${c.branch})? hooklog deletes its webhook and takes no more of its deliveries.`)) {
          act("disconnect", () => api("DELETE", `/v1/admin/repositories/${c.connection_id}`));
        }
      } }, "Disconnect")) : "",
  ]) : h("p", { class: "empty" }, "No repository connected without the App."));
  parts.push(connectRepositoryForm());
  parts.push(h("h3", {}, "CI incidents"));
  parts.push(incidents.items.length ? h("div", { id: "incidents" }, table(["Opened", "Repository", "Branch", "Workflow", "Status", "Failures", "Failing run", "Resolved by"], incidents.items.map((i) => ({ ...i, __key: i.incident_id })), (i) => [
    when(i.failed_at), i.repository, i.branch, i.workflow || "—", chip(i.status), String(i.failures),
    h("a", { href: i.last_run_url, rel: "noreferrer" }, `${i.conclusion} at ${i.last_head_sha.slice(0, 7)}`),
    i.resolved_by_run_url ? h("a", { href: i.resolved_by_run_url, rel: "noreferrer" }, `${i.resolved_head_sha.slice(0, 7)}, ${when(i.resolved_at)}`) : "—",
  ])) : h("p", { class: "empty", id: "incidents" }, "No incident: no connected repository's CI is failing."));
  parts.push(h("h3", {}, "Pull requests"));
  parts.push(pulls.items.length ? table(["Changed", "Repository", "#", "Title", "State", "Branches"], pulls.items, (p) => [
    when(p.updated_at), p.repository, h("a", { href: p.url, rel: "noreferrer" }, String(p.number)), p.title, chip(p.state), `${p.head_branch} → ${p.base_branch}`,
  ]) : h("p", { class: "empty" }, "No pull request seen yet."));
  return parts;
}

async function auditView() {
  const get = (path) => api("GET", path).catch((err) => `unavailable: ${err.message}`);
  const [key, deliveries, events] = await Promise.all([get("/v1/audit/key"), get("/v1/audit/deliveries/checkpoint"), get("/v1/audit/events/checkpoint")]);
  return [
    h("h2", {}, "Audit"),
    h("h3", {}, "Verifier key"), h("pre", { id: "verifier-key" }, typeof key === "string" ? key : JSON.stringify(key)),
    h("div", { class: "grid2" },
      h("div", {}, h("h3", {}, "Deliveries log: latest checkpoint"), h("pre", {}, String(deliveries))),
      h("div", {}, h("h3", {}, "Events log: latest checkpoint"), h("pre", {}, String(events)))),
    h("p", { class: "muted" }, "Check them with `hooklog audit verify --public-key KEY`, or any C2SP tlog-tiles client."),
  ];
}

let routing = 0;
async function route(opts) {
  opts = opts || {};
  if (!session) return;
  const ticket = ++routing;
  const hash = location.hash.slice(1) || "instances";
  const [path, rawQuery] = hash.split("?");
  const params = new URLSearchParams(rawQuery || "");
  const [section, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.getAttribute("href").slice(1) === section || (section === "target" && link.getAttribute("href") === "#targets") || (section === "delivery" && link.getAttribute("href") === "#deliveries");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  try {
    const views = {
      instances: () => instancesView(opts),
      targets: () => targetsView(opts),
      target: () => targetView(arg, opts),
      deliveries: () => deliveriesView(opts, params),
      delivery: () => deliveryView(arg),
      "dead-letters": () => deadLettersView(),
      github: () => githubView(opts),
      repositories: () => repositoriesView(opts),
      audit: () => auditView(),
    };
    const parts = await (views[section] || views.instances)();
    if (ticket !== routing) return;
    const view = $("view");
    // Keep focus and typed text in a form the refresh would replace.
    if (opts.quiet && view.contains(document.activeElement) && document.activeElement.tagName === "INPUT" && document.activeElement.type === "text") return;
    view.replaceChildren(...parts);
    if (!opts.quiet) showError(null);
  } catch (err) {
    if (ticket === routing && err.status !== 401) showError(err);
  }
}

window.addEventListener("hashchange", () => { notice(null); route(); });
document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    login($("token").value);
  });
  $("logout").addEventListener("click", () => logout());
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) login(token); else $("token").focus();
});
