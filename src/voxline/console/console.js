// voxline console: agents, calls, live calls and outbound tasks, over the public /v1 API.
// No framework, no build step, nothing fetched from elsewhere. Views are addressed by the URL
// fragment (#/calls/sess_...), so every view can be bookmarked and the back button works.

const KEY_STORAGE = "voxline.apiKey"; // shared with the talk page (/talk), same tab only
const PAGE_SIZE = 20;
const LIVE_REFRESH_MS = 2000;
const TRANSCRIPT_POLL_MS = 1000;
const LISTEN_RATE = 16000;
const FINAL_TASK_STATUSES = new Set(["completed", "busy", "no_answer", "failed", "voicemail", "canceled"]);
const LATENCY_PARTS = [
  ["wait", "endOfTurnWaitMs", "wait"],
  ["stt", "sttMs", "STT"],
  ["llm", "llmFirstTokenMs", "LLM"],
  ["clause", "firstClauseMs", "first clause"],
  ["tts", "ttsFirstByteMs", "TTS"],
  ["overhead", "overheadMs", "overhead"],
];

const $ = (id) => document.getElementById(id);
const view = $("view");
let cleanup = []; // what the current view must stop when the user leaves it
let routeGeneration = 0; // counts route() runs: a view begun by an earlier one is stale
let agentNames = new Map();

// --- small DOM helpers -------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// A view shows and keeps things running only while its route is current: one that finishes
// loading after the user moved on (or after a newer route() of the same page) changes nothing.
function show(visit, ...children) {
  if (!current(visit)) return;
  view.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
}

function formatTime(value) {
  return value ? new Date(value).toLocaleString() : "—";
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function notice(text) {
  return h("p", { class: "notice", role: "status" }, text);
}

// --- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(path, { method = "GET", body, raw = false, signal } = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.status === 401) {
    signOut("Your API key was refused: sign in again.");
    throw new ApiError(401, "not signed in");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let param = null;
    try {
      const error = (await response.json()).error;
      message = error.message;
      param = error.param;
    } catch {
      // not the API's error shape: keep the status line
    }
    throw new ApiError(response.status, message, param);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

async function loadAgentNames() {
  const page = await api("/v1/agents?limit=100");
  agentNames = new Map(page.data.map((agent) => [agent.id, agent.name]));
  return page.data;
}

// --- signing in ----------------------------------------------------------------------------

async function signIn() {
  if (apiKey()) return true;
  const dev = await fetch("/v1/dev/console-key", { method: "POST" }).catch(() => null);
  if (dev && dev.ok) {
    sessionStorage.setItem(KEY_STORAGE, (await dev.json()).apiKey);
    return true;
  }
  return false;
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  stopView();
  view.replaceChildren();
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("sign-in-key").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("sign-in-key").value.trim());
  $("sign-in-key").value = "";
  try {
    await loadAgentNames();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) $("sign-in-error").textContent = error.message;
    return;
  }
  $("sign-in").hidden = true;
  route();
});
$("sign-out").addEventListener("click", () => signOut());

// --- routing -------------------------------------------------------------------------------

function current(visit) {
  return visit.generation === routeGeneration;
}

// Stop what a view started when the user leaves it, or at once if they already have.
function keep(visit, stop) {
  if (current(visit)) cleanup.push(stop);
  else stop();
}

function stopView() {
  routeGeneration += 1; // the view still loading, if any, is stale now (signing out too)
  for (const stop of cleanup) stop();
  cleanup = [];
}

async function route() {
  stopView();
  if (!apiKey()) {
    signOut();
    return;
  }
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  const [name = "calls", id, extra] = location.hash.replace(/^#\/?/, "").split("/");
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const views = { agents: agentsView, calls: callsView, live: liveView, outbound: outboundView, talk: talkView };
  const render = views[name] || callsView;
  const visit = { generation: ++routeGeneration };
  try {
    await render(visit, id ? decodeURIComponent(id) : undefined, extra);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    show(visit, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, error.message));
  }
}

window.addEventListener("hashchange", route);

// --- agents --------------------------------------------------------------------------------

async function agentsView(visit, id) {
  if (id === "new") return agentEditor(visit, null);
  if (id) return agentEditor(visit, await api(`/v1/agents/${encodeURIComponent(id)}`));
  const agents = await loadAgentNames();
  const rows = agents.map((agent) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/agents/${agent.id}` }, agent.name)),
      h("td", { class: "muted" }, agent.id),
      h("td", {}, `${agent.stt.provider} · ${agent.llm.provider} · ${agent.tts.provider}`),
      h("td", {}, agent.recording && agent.recording.enabled ? "on" : "off"),
      h(
        "td",
        { class: "row" },
        h("a", { href: `#/talk/${agent.id}`, "aria-label": `Talk to ${agent.name}` }, "Talk to it"),
        h("a", { href: "#/calls", "aria-label": `Calls of ${agent.name}`, onclick: () => (pendingCallFilter = { agentId: agent.id }) }, "Calls"),
        h("button", { type: "button", class: "secondary", "aria-label": `Delete ${agent.name}`, onclick: () => deleteAgent(agent) }, "Delete"),
      ),
    ),
  );
  show(
    visit,
    h("div", { class: "row" }, h("h1", {}, "Agents"), h("a", { href: "#/agents/new", class: "button" }, "New agent")),
    agents.length
      ? h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Name", "ID", "STT · LLM · TTS", "Recording", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        )
      : h("p", {}, "No agents yet. ", h("a", { href: "#/agents/new" }, "Create one.")),
  );
}

async function deleteAgent(agent) {
  if (!confirm(`Delete the agent ${agent.name}?`)) return;
  try {
    await api(`/v1/agents/${agent.id}`, { method: "DELETE" });
  } catch (error) {
    alert(error.message);
    return;
  }
  route();
}

const NEW_AGENT = {
  name: "",
  systemPrompt: "You are a helpful voice assistant. Keep answers short.",
  firstMessage: "Hello! How can I help you?",
  language: "en",
  recording: { enabled: true, bitrateKbps: 32 },
};
const IDENTITY_FIELDS = new Set(["id", "workspaceId", "createdAt", "updatedAt"]);
const LONG_TEXT = new Set(["systemPrompt"]);

function agentEditor(visit, agent) {
  const spec = agent ? Object.fromEntries(Object.entries(agent).filter(([key]) => !IDENTITY_FIELDS.has(key))) : NEW_AGENT;
  const summary = h("p", { class: "error", role: "alert", id: "form-error" });
  const form = h("form", { id: "agent-form", novalidate: true }, fieldsFor(spec, ""));
  const save = h("button", { type: "submit" }, agent ? "Save" : "Create agent");
  form.append(
    summary,
    h(
      "div",
      { class: "actions" },
      save,
      agent ? h("a", { href: `#/talk/${agent.id}` }, "Talk to it") : null,
      h("a", { href: "#/agents" }, "Back to agents"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    let body;
    try {
      body = readFields(form);
    } catch (error) {
      showFieldError(form, error.param, error.message);
      return;
    }
    save.disabled = true;
    try {
      const saved = agent
        ? await api(`/v1/agents/${agent.id}`, { method: "PATCH", body })
        : await api("/v1/agents", { method: "POST", body });
      location.hash = `#/agents/${saved.id}`;
      if (agent) {
        await route();
        $("form-error").textContent = "";
        view.prepend(h("p", { class: "notice", role: "status" }, "Saved."));
      }
    } catch (error) {
      if (error.status === 401) return;
      showFieldError(form, error.param, error.message);
    } finally {
      save.disabled = false;
    }
  });
  show(visit, h("h1", {}, agent ? `Agent: ${agent.name}` : "New agent"), agent ? h("p", { class: "muted" }, agent.id) : null, form);
}

const LABELS = {
  stt: "Speech to text (STT)",
  llm: "Language model (LLM)",
  tts: "Text to speech (TTS)",
  sttFallbacks: "STT fallbacks",
  llmFallbacks: "LLM fallbacks",
  ttsFallbacks: "TTS fallbacks",
  webhookUrl: "Webhook URL",
};

function label(key) {
  if (LABELS[key]) return LABELS[key];
  return key.replace(/([A-Z])/g, " $1").replace(/^./, (c) => c.toUpperCase());
}

function fieldId(path) {
  return `f-${path.replace(/[^A-Za-z0-9]/g, "-")}`;
}

// Every field of the spec as a form control, nested objects as fieldsets. Lists of objects
// (tools, fallbacks) are edited as JSON; lists of words one per line.
function fieldsFor(value, prefix) {
  return Object.entries(value).map(([key, item]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (item && typeof item === "object" && !Array.isArray(item)) {
      const group = h("fieldset", { dataset: { group: path } }, h("legend", {}, label(key)), fieldsFor(item, path));
      const asJson = () => {
        const value = path.split(".").reduce((node, part) => node[part], readFields(group));
        group.replaceChildren(h("legend", {}, label(key)), field(key, path, value));
        group.querySelector("textarea").focus();
      };
      group.append(h("button", { type: "button", class: "secondary small", "aria-label": `Edit ${label(key)} as JSON`, onclick: asJson }, "Edit as JSON"));
      return group;
    }
    return field(key, path, item);
  });
}

function field(key, path, item) {
  const id = fieldId(path);
  let control;
  if (typeof item === "boolean") {
    control = h("input", { type: "checkbox", id, checked: item, dataset: { path, kind: "boolean" } });
  } else if (typeof item === "number") {
    control = h("input", { type: "number", step: "any", id, value: item, dataset: { path, kind: "number" } });
  } else if (Array.isArray(item) && item.every((entry) => typeof entry === "string") && item.length) {
    control = h("textarea", { id, dataset: { path, kind: "lines" }, rows: 3 }, item.join("\n"));
  } else if (Array.isArray(item) || (item && typeof item === "object")) {
    // Lists of objects, and any group switched to JSON (to change a provider, say).
    const rows = Array.isArray(item) && !item.length ? 2 : 8;
    control = h("textarea", { id, dataset: { path, kind: "json" }, rows }, JSON.stringify(item, null, 2));
  } else if (LONG_TEXT.has(key)) {
    control = h("textarea", { id, dataset: { path, kind: "string" }, rows: 5 }, item ?? "");
  } else {
    const kind = item === null ? "nullable" : "string";
    control = h("input", { type: "text", id, value: item ?? "", placeholder: item === null ? "(none)" : null, dataset: { path, kind } });
  }
  return h("div", { class: "field", dataset: { field: path } }, h("label", { for: id }, label(key)), control);
}

function readFields(form) {
  const body = {};
  for (const control of form.querySelectorAll("[data-path]")) {
    const { path, kind } = control.dataset;
    let value;
    if (kind === "boolean") value = control.checked;
    else if (kind === "number") value = control.value === "" ? null : Number(control.value);
    else if (kind === "lines") value = control.value.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (kind === "json") {
      try {
        value = JSON.parse(control.value || "[]");
      } catch (error) {
        throw Object.assign(new Error(`Not valid JSON: ${error.message}`), { param: path });
      }
    } else if (kind === "nullable") value = control.value === "" ? null : control.value;
    else value = control.value;
    const parts = path.split(".");
    let node = body;
    for (const part of parts.slice(0, -1)) node = node[part] ??= {};
    node[parts.at(-1)] = value;
  }
  return body;
}

function clearErrors(form) {
  for (const error of form.querySelectorAll(".field-error")) error.remove();
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    control.removeAttribute("aria-describedby");
  }
  $("form-error").textContent = "";
}

// The API names the field at fault with a dotted path (`turnTaking.vadThreshold`, `tools.0.url`):
// the message goes next to that field, or the closest one that holds it.
function showFieldError(form, param, message) {
  let control = null;
  if (param) {
    const parts = param.split(".");
    while (parts.length && !control) {
      control = form.querySelector(`[data-path="${parts.join(".")}"]`);
      parts.pop();
    }
  }
  if (!control) {
    $("form-error").textContent = message;
    return;
  }
  const errorId = `${control.id}-error`;
  const text = h("p", { class: "field-error", id: errorId, role: "alert" }, message);
  control.closest(".field").append(text);
  control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-describedby", errorId);
  $("form-error").textContent = "The agent was not saved: see the field marked below.";
  control.focus();
}

// --- calls ---------------------------------------------------------------------------------

let pendingCallFilter = null;
let callFilter = {};

async function callsView(visit, id) {
  if (id) return callView(visit, id);
  await loadAgentNames();
  if (pendingCallFilter) {
    callFilter = pendingCallFilter;
    pendingCallFilter = null;
  }
  const filters = h(
    "form",
    { class: "filters", id: "call-filters" },
    h("label", {}, "Agent", h("select", { name: "agentId" }, h("option", { value: "" }, "any"), [...agentNames].map(([value, name]) => h("option", { value }, name)))),
    selectFilter("Status", "status", ["pending", "in_progress", "completed", "failed"]),
    selectFilter("Direction", "direction", ["inbound", "outbound"]),
    selectFilter("Channel", "channel", ["phone", "web"]),
    h("label", {}, "From", h("input", { type: "date", name: "from" })),
    h("label", {}, "To", h("input", { type: "date", name: "to" })),
    h("button", { type: "submit" }, "Filter"),
  );
  for (const [name, value] of Object.entries(callFilter)) if (filters.elements[name]) filters.elements[name].value = value;
  const table = h("div", { id: "call-list" });
  const pager = h("div", { class: "pager" });
  const cursors = [null];
  const load = async () => {
    const params = new URLSearchParams({ limit: PAGE_SIZE });
    for (const name of ["agentId", "status", "direction", "channel"]) if (callFilter[name]) params.set(name, callFilter[name]);
    if (callFilter.from) params.set("createdAfter", new Date(`${callFilter.from}T00:00`).toISOString());
    if (callFilter.to) params.set("createdBefore", new Date(new Date(`${callFilter.to}T00:00`).getTime() + 86400000).toISOString());
    const cursor = cursors.at(-1);
    if (cursor) params.set("after", cursor);
    const page = await api(`/v1/sessions?${params}`);
    table.replaceChildren(callTable(page.data));
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", disabled: cursors.length === 1, onclick: () => { cursors.pop(); load(); } }, "Previous page"),
      h("span", { class: "muted" }, `Page ${cursors.length}`),
      h("button", { type: "button", class: "secondary", disabled: !page.hasMore, onclick: () => { cursors.push(page.nextCursor); load(); } }, "Next page"),
    );
  };
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    callFilter = Object.fromEntries([...new FormData(filters)].filter(([, value]) => value));
    cursors.splice(1);
    load();
  });
  show(visit, h("h1", {}, "Calls"), filters, table, pager);
  await load();
}

function selectFilter(title, name, values) {
  return h("label", {}, title, h("select", { name }, h("option", { value: "" }, "any"), values.map((value) => h("option", { value }, value.replace("_", " ")))));
}

function callTable(sessions) {
  if (!sessions.length) return h("p", { class: "muted" }, "No calls match.");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ["Started", "Agent", "Channel", "From → to", "Status", "End reason", "Duration", "First response"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      sessions.map((s) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/calls/${s.id}` }, formatTime(s.startedAt || s.createdAt))),
          h("td", {}, agentNames.get(s.agentId) || s.agentId),
          h("td", {}, `${s.channel} · ${s.direction}`),
          h("td", {}, s.from || s.to ? `${s.from || "?"} → ${s.to || "?"}` : "—"),
          h("td", {}, h("span", { class: `status ${s.status}` }, s.status.replace("_", " "))),
          h("td", {}, s.endReason || "—"),
          h("td", {}, formatMs(s.durationMs)),
          h("td", {}, formatMs(s.firstResponseMs)),
        ),
      ),
    ),
  );
}

async function callView(visit, id) {
  const [session] = await Promise.all([api(`/v1/sessions/${encodeURIComponent(id)}`), loadAgentNames()]);
  if (!current(visit)) return;
  const transcript = h("ol", { class: "transcript", id: "transcript", "aria-label": "Transcript" });
  renderTranscript(transcript, session.transcript);
  const player = h("div", { id: "recording" }, h("p", { class: "muted" }, "Loading the recording…"));
  const outbound = session.direction === "outbound" ? h("div", { id: "outbound-task" }) : null;
  show(
    visit,
    h("p", {}, h("a", { href: "#/calls" }, "← All calls")),
    h("h1", {}, `Call ${session.id}`),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel", "aria-labelledby": "facts-title" }, h("h2", { id: "facts-title" }, "Summary"), facts(session), outbound),
      h("section", { class: "panel", "aria-labelledby": "recording-title" }, h("h2", { id: "recording-title" }, "Recording"), player),
    ),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel", "aria-labelledby": "transcript-title" }, h("h2", { id: "transcript-title" }, "Transcript"), transcript),
      h("section", { class: "panel", "aria-labelledby": "latency-title" }, h("h2", { id: "latency-title" }, "Where each turn's time went"), latencyBars(session.metrics)),
    ),
    h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: () => deleteCall(session) }, "Delete this call")),
  );
  if (outbound) showTask(outbound, session.id);
  const audio = await loadRecording(visit, player, session.id);
  if (audio) followPlayback(audio, transcript);
}

function facts(s) {
  const rows = [
    ["Status", h("span", { class: `status ${s.status}` }, s.status.replace("_", " "))],
    ["End reason", s.endReason || "—"],
    ["Error", s.error || null],
    ["Agent", h("a", { href: `#/agents/${s.agentId}` }, agentNames.get(s.agentId) || s.agentId)],
    ["Channel", `${s.channel} · ${s.direction}`],
    ["From", s.from],
    ["To", s.to],
    ["Call SID", s.callSid],
    ["Created", formatTime(s.createdAt)],
    ["Started", formatTime(s.startedAt)],
    ["Ended", formatTime(s.endedAt)],
    ["Duration", formatMs(s.durationMs)],
    ["First response", formatMs(s.firstResponseMs)],
    ["Turns", String(s.metrics ? s.metrics.length : 0)],
  ];
  return h("dl", { class: "facts" }, rows.filter(([, value]) => value !== null && value !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function showTask(container, sessionId) {
  try {
    const page = await api("/v1/tasks?limit=100");
    for (const task of page.data) {
      const attempt = (task.attempts || []).find((a) => a.sessionId === sessionId);
      if (attempt) {
        container.replaceChildren(h("p", {}, `Outbound task `, h("a", { href: `#/outbound/${task.id}` }, task.id), `, attempt ${attempt.number} (${attempt.status}).`));
        return;
      }
    }
    container.replaceChildren(h("p", { class: "muted" }, "No outbound task names this call among the latest tasks."));
  } catch (error) {
    container.replaceChildren(h("p", { class: "muted" }, error.status === 404 ? "Outbound tasks are not available on this server." : error.message));
  }
}

async function deleteCall(session) {
  if (!confirm("Delete this call, its transcript and its recording?")) return;
  try {
    await api(`/v1/sessions/${session.id}`, { method: "DELETE" });
    location.hash = "#/calls";
  } catch (error) {
    alert(error.message);
  }
}

// The recording is fetched with the API key (an <audio src> cannot send it) and played
// from memory, where seeking is instant.
async function loadRecording(visit, container, sessionId) {
  let response;
  try {
    response = await api(`/v1/sessions/${sessionId}/recording`, { raw: true });
  } catch (error) {
    container.replaceChildren(h("p", { class: "muted" }, error.status === 404 ? "This call has no recording." : error.message));
    return null;
  }
  const url = URL.createObjectURL(await response.blob());
  keep(visit, () => URL.revokeObjectURL(url));
  const audio = h("audio", { controls: true, preload: "metadata", src: url, id: "recording-audio", "aria-label": "Call recording" });
  container.replaceChildren(
    audio,
    h("p", { class: "muted" }, "Caller on the left, agent on the right, as the caller heard it. Click a line of the transcript to play from there."),
    h("a", { href: url, download: `${sessionId}.ogg` }, "Download (Ogg/Opus)"),
  );
  return audio;
}

function followPlayback(audio, transcript) {
  transcript.addEventListener("click", (event) => {
    const item = event.target.closest("li[data-at]");
    if (!item) return;
    audio.currentTime = Number(item.dataset.at) / 1000;
    audio.play().catch(() => {});
  });
  audio.addEventListener("timeupdate", () => {
    const now = audio.currentTime * 1000;
    let current = null;
    for (const item of transcript.querySelectorAll("li[data-at]")) {
      if (Number(item.dataset.at) <= now) current = item;
    }
    for (const item of transcript.querySelectorAll("li.current")) if (item !== current) item.classList.remove("current");
    if (current && !current.classList.contains("current")) {
      current.classList.add("current");
      current.scrollIntoView({ block: "nearest" });
    }
  });
}

function renderTranscript(list, items) {
  list.replaceChildren(...items.map(transcriptItem));
  if (!items.length) list.append(h("li", { class: "muted" }, "Nothing was said."));
}

function transcriptItem(item) {
  const at = h("span", {}, formatClock(item.atMs));
  const who = { caller: "Caller", agent: "Agent", tool_call: "Tool call", tool_result: "Tool result", dtmf: "Keypad" }[item.role] || item.role;
  const dataset = { at: item.atMs, seq: item.seq };
  if (item.data && item.data.response) dataset.response = item.data.response;
  const li = h("li", { class: item.role, dataset }, h("div", { class: "who" }, h("span", {}, who), at));
  if (item.role === "agent" && item.interrupted) {
    const heard = item.heardText || "";
    const rest = item.text.startsWith(heard) ? item.text.slice(heard.length) : item.text;
    li.append(h("span", { class: "heard" }, heard), " ", h("s", { class: "unheard", title: "not heard: the caller interrupted" }, rest.trim()));
  } else if (item.role === "tool_call" || item.role === "tool_result") {
    li.append(h("strong", {}, item.data.name || item.text));
    const detail = item.role === "tool_call" ? item.data.arguments : item.data.result ?? item.data.content ?? item.data.error ?? item.text;
    if (detail !== undefined) li.append(h("pre", {}, typeof detail === "string" ? detail : JSON.stringify(detail, null, 2)));
  } else {
    li.append(h("span", { class: "text" }, item.text));
  }
  return li;
}

function formatClock(ms) {
  const seconds = Math.floor((ms || 0) / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function latencyBars(metrics) {
  if (!metrics || !metrics.length) return h("p", { class: "muted" }, "No agent turns were measured.");
  const total = (m) => LATENCY_PARTS.reduce((sum, [, key]) => sum + (m[key] || 0), 0);
  const widest = Math.max(...metrics.map(total), 1);
  const rows = metrics.map((m) => {
    const parts = LATENCY_PARTS.filter(([, key]) => m[key]);
    const description = parts.map(([, key, name]) => `${name} ${formatMs(m[key])}`).join(", ");
    return h(
      "div",
      { class: "turn" },
      h("span", {}, `Turn ${m.turn}`),
      h(
        "div",
        { class: "track", role: "img", "aria-label": `Turn ${m.turn}: ${description}` },
        parts.map(([css, key, name]) => h("span", { class: `seg ${css}`, style: `width:${(100 * m[key]) / widest}%`, title: `${name}: ${formatMs(m[key])}` })),
      ),
      h("span", {}, formatMs(m.turnLatencyMs)),
    );
  });
  const legend = h("div", { class: "legend" }, LATENCY_PARTS.map(([css, , name]) => h("span", { style: `--swatch: var(--${css})` }, name)));
  return h("div", { class: "latency", id: "latency" }, rows, legend, h("p", { class: "muted" }, "Right: the turn's latency, end of the caller's speech to the agent's first audio."));
}

// --- live ------------------------------------------------------------------------------------

async function liveView(visit, id) {
  await loadAgentNames();
  if (!current(visit)) return;
  const list = h("div", { id: "live-list" });
  const detail = h("section", { class: "panel", id: "live-call", hidden: !id });
  const status = h("p", { id: "live-status", class: "muted" });
  show(visit, h("h1", {}, "Live calls"), status, list, detail);
  const refresh = async () => {
    const page = await api("/v1/sessions?status=in_progress&limit=50");
    list.replaceChildren(
      page.data.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Started", "Agent", "Channel", "From → to", ""].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              page.data.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", {}, formatTime(s.startedAt)),
                  h("td", {}, agentNames.get(s.agentId) || s.agentId),
                  h("td", {}, `${s.channel} · ${s.direction}`),
                  h("td", {}, s.from || s.to ? `${s.from || "?"} → ${s.to || "?"}` : "—"),
                  h("td", {}, h("a", { href: `#/live/${s.id}` }, "Watch")),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No call is in progress."),
    );
  };
  await refresh();
  const workspaceStream = await openEvents("/v1/events", () => refresh().catch(() => {}));
  if (workspaceStream) {
    status.textContent = "Calls appear and leave as they start and end.";
    keep(visit, workspaceStream);
  } else {
    status.textContent = "Live events are not available on this server: the list refreshes every 2 seconds.";
    const timer = setInterval(() => refresh().catch(() => {}), LIVE_REFRESH_MS);
    keep(visit, () => clearInterval(timer));
  }
  if (id) await watchCall(visit, detail, id);
}

async function watchCall(visit, container, id) {
  const session = await api(`/v1/sessions/${encodeURIComponent(id)}`);
  if (!current(visit)) return;
  const transcript = h("ol", { class: "transcript", id: "live-transcript", "aria-label": "Live transcript" });
  const partial = h("p", { class: "partial", id: "live-partial" });
  const note = h("p", { class: "muted", id: "live-note" });
  const listenNote = h("p", { class: "muted", id: "listen-note", role: "status" });
  const listen = h("button", { type: "button", id: "listen" }, "Listen in");
  const state = h("p", { id: "live-call-status" }, h("span", { class: `status ${session.status}` }, session.status.replace("_", " ")));
  container.replaceChildren(
    h("h2", {}, `Call ${session.id}`),
    state,
    h("div", { class: "row" }, listen, h("a", { href: `#/calls/${session.id}` }, "Open the call page")),
    listenNote,
    note,
    transcript,
    partial,
  );
  renderTranscript(transcript, session.transcript);
  listen.addEventListener("click", () => toggleListen(listen, session.id));
  keep(visit, () => stopListening());

  const ended = (status) => state.replaceChildren(h("span", { class: `status ${status}` }, status.replace("_", " ")));
  const stored = session.transcript.at(-1);
  const live = new LiveTranscript(transcript, partial, ended, stored ? stored.atMs : -1);
  const stream = await openEvents(`/v1/sessions/${encodeURIComponent(id)}/events`, (event) => live.apply(event));
  if (stream) {
    keep(visit, stream);
    return;
  }
  note.textContent = "Live events are not available on this server: the transcript is read again every second instead.";
  const timer = setInterval(async () => {
    try {
      const current = await api(`/v1/sessions/${encodeURIComponent(id)}`);
      renderTranscript(transcript, current.transcript);
      transcript.scrollTop = transcript.scrollHeight;
      ended(current.status);
      if (current.status === "completed" || current.status === "failed") clearInterval(timer);
    } catch {
      clearInterval(timer);
    }
  }, TRANSCRIPT_POLL_MS);
  keep(visit, () => clearInterval(timer));
}

// A call's typed events (the live events of GET /v1/sessions/{id}/events) as transcript lines.
// The stream replays a short history on connect and after a reconnection: events already
// shown (by `seq`) and those older than the transcript read before are skipped.
class LiveTranscript {
  constructor(list, partial, ended, shownUntilMs) {
    this.list = list;
    this.partial = partial;
    this.ended = ended;
    this.shownUntilMs = shownUntilMs;
    this.seen = new Set();
    this.responses = new Map();
  }

  apply(event) {
    const type = event.type;
    if (event.seq !== undefined) {
      if (this.seen.has(event.seq)) return;
      this.seen.add(event.seq);
    }
    const shown = type !== "session.ended" && type !== "agent.text" && event.atMs !== undefined && event.atMs < this.shownUntilMs;
    if (shown) return;
    if (type === "transcript.partial") this.partial.textContent = event.text;
    else if (type === "transcript.final") {
      this.partial.textContent = "";
      this.add(transcriptItem({ role: "caller", text: event.text, atMs: event.atMs, data: {} }));
    } else if (type === "agent.text") {
      // Each event is one clause of the message `response`; the message may already be shown
      // from the stored transcript.
      const existing = this.responses.get(event.response) || this.list.querySelector(`li.agent[data-response="${event.response}"]`);
      if (existing) {
        const text = existing.querySelector("span.text");
        if (text && !text.textContent.includes(event.text)) text.textContent = `${text.textContent} ${event.text}`.trim();
        this.responses.set(event.response, existing);
      } else {
        this.responses.set(event.response, this.add(transcriptItem({ role: "agent", text: event.text, atMs: event.atMs, data: { response: event.response } })));
      }
    } else if (type === "agent.interrupted") {
      const item = transcriptItem({ role: "agent", text: event.text, heardText: event.heardText, interrupted: true, atMs: event.atMs, data: {} });
      const existing = this.responses.get(event.response);
      if (existing) existing.replaceWith(item);
      else this.add(item);
      this.responses.set(event.response, item);
    } else if (type === "tool.call") {
      this.add(transcriptItem({ role: "tool_call", text: event.name, atMs: event.atMs, data: { name: event.name, arguments: event.arguments } }));
    } else if (type === "tool.result") {
      this.add(transcriptItem({ role: "tool_result", text: event.name, atMs: event.atMs, data: { name: event.name, content: event.content } }));
    } else if (type === "session.ended") {
      this.ended(event.error ? "failed" : "completed");
    }
  }

  add(item) {
    this.list.querySelector("li.muted")?.remove();
    this.list.append(item);
    this.list.scrollTop = this.list.scrollHeight;
    return item;
  }
}

// Server-Sent Events read with fetch (EventSource cannot send the API key). Resolves to a
// function that stops the stream, or null when the server has no such endpoint.
async function openEvents(path, onEvent) {
  const controller = new AbortController();
  let lastId = null;
  const connect = async () => {
    const headers = { Authorization: `Bearer ${apiKey()}`, Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    return fetch(path, { headers, signal: controller.signal });
  };
  let response;
  try {
    response = await connect();
  } catch {
    return null;
  }
  if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
    controller.abort();
    return null;
  }
  (async () => {
    while (!controller.signal.aborted) {
      try {
        await readEvents(response, onEvent, (id) => (lastId = id));
      } catch {
        // dropped: reconnect below, resuming after the last event seen
      }
      if (controller.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      try {
        response = await connect();
      } catch {
        return;
      }
      if (!response.ok) return;
    }
  })();
  return () => controller.abort();
}

async function readEvents(response, onEvent, onId) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        else if (line.startsWith("id:")) onId(line.slice(3).trim());
      }
      if (!data.length) continue;
      try {
        const event = JSON.parse(data.join("\n"));
        if (!event.type) event.type = name;
        onEvent(event);
      } catch {
        // not JSON: not one of ours
      }
    }
  }
}

// --- listen-in ---------------------------------------------------------------------------------

let listening = null;

async function toggleListen(button, sessionId) {
  if (listening) {
    stopListening();
    button.textContent = "Listen in";
    return;
  }
  const controller = new AbortController();
  let response;
  try {
    response = await api(`/v1/sessions/${sessionId}/listen`, { raw: true, signal: controller.signal });
  } catch (error) {
    $("listen-note").textContent = `Listen-in: ${error.message}`;
    return;
  }
  const context = new AudioContext({ sampleRate: LISTEN_RATE });
  listening = { controller, context };
  button.textContent = "Stop listening";
  $("listen-note").textContent = "Listening: caller on the left, agent on the right, about half a second behind.";
  playPcm(response, context, controller.signal).finally(() => {
    if (listening && listening.controller === controller) {
      stopListening();
      button.textContent = "Listen in";
    }
  });
}

function stopListening() {
  if (!listening) return;
  listening.controller.abort();
  listening.context.close();
  listening = null;
}

async function playPcm(response, context, signal) {
  const reader = response.body.getReader();
  let playAt = context.currentTime + 0.3;
  let carry = new Uint8Array(0);
  try {
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      const bytes = new Uint8Array(carry.length + value.length);
      bytes.set(carry);
      bytes.set(value, carry.length);
      const usable = bytes.length - (bytes.length % 4);
      carry = bytes.slice(usable);
      const samples = new Int16Array(bytes.buffer.slice(0, usable));
      const frames = samples.length / 2;
      if (!frames) continue;
      const buffer = context.createBuffer(2, frames, LISTEN_RATE);
      const left = buffer.getChannelData(0);
      const right = buffer.getChannelData(1);
      for (let i = 0; i < frames; i++) {
        left[i] = samples[2 * i] / 32768;
        right[i] = samples[2 * i + 1] / 32768;
      }
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      playAt = Math.max(playAt, context.currentTime + 0.05);
      source.start(playAt);
      playAt += buffer.duration;
    }
  } catch {
    // stopped or the call ended
  }
}

// --- outbound ----------------------------------------------------------------------------------

async function outboundView(visit) {
  let page;
  try {
    page = await api("/v1/tasks?limit=50");
  } catch (error) {
    if (error.status !== 404) throw error;
    show(visit, h("h1", {}, "Outbound"), notice("Outbound calls are not available on this server: it has no tasks API (/v1/tasks)."));
    return;
  }
  await loadAgentNames();
  let batches;
  try {
    batches = (await api("/v1/batches?limit=50")).data;
  } catch {
    // No list of batches on this server: those of the latest tasks, one by one.
    const batchIds = [...new Set(page.data.map((task) => task.batchId).filter(Boolean))];
    batches = await Promise.all(batchIds.map((id) => api(`/v1/batches/${id}`).catch(() => null)));
  }
  show(
    visit,
    h("h1", {}, "Outbound"),
    h("h2", {}, "Batches"),
    batches.filter(Boolean).length
      ? h(
          "table",
          { id: "batches" },
          h("thead", {}, h("tr", {}, ["Batch", "Agent", "Progress", ""].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            batches.filter(Boolean).map((batch) =>
              h(
                "tr",
                {},
                h("td", {}, batch.id),
                h("td", {}, agentNames.get(batch.agentId) || batch.agentId || "—"),
                h("td", {}, Object.entries(batch.counts || batch.statusCounts || {}).map(([status, count]) => `${status.replace("_", " ")} ${count}`).join(" · ")),
                h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Cancel batch ${batch.id}`, onclick: () => cancel(`/v1/batches/${batch.id}/cancel`) }, "Cancel batch")),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No batches among the latest tasks."),
    h("h2", {}, "Tasks"),
    page.data.length
      ? h(
          "table",
          { id: "tasks" },
          h("thead", {}, h("tr", {}, ["Task", "Agent", "To", "Status", "Attempts", "Next attempt", ""].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            page.data.map((task) =>
              h(
                "tr",
                {},
                h("td", {}, task.id),
                h("td", {}, agentNames.get(task.agentId) || task.agentId),
                h("td", {}, task.to),
                h("td", {}, h("span", { class: `status ${task.status}` }, task.status.replace("_", " ")), task.endedReason ? ` (${task.endedReason})` : ""),
                h(
                  "td",
                  {},
                  (task.attempts || []).map((attempt) =>
                    h("div", {}, `#${attempt.number} ${attempt.status}`, attempt.sessionId ? [" · ", h("a", { href: `#/calls/${attempt.sessionId}` }, "call")] : ""),
                  ),
                ),
                h("td", {}, formatTime(task.nextAttemptAt)),
                h("td", {}, FINAL_TASK_STATUSES.has(task.status) ? "" : h("button", { type: "button", class: "secondary", "aria-label": `Cancel ${task.id}`, onclick: () => cancel(`/v1/tasks/${task.id}/cancel`) }, "Cancel")),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No outbound tasks yet."),
  );
}

async function cancel(path) {
  if (!confirm("Cancel? Calls not placed yet will never be dialed.")) return;
  try {
    await api(path, { method: "POST" });
  } catch (error) {
    alert(error.message);
  }
  route();
}

// --- talk ----------------------------------------------------------------------------------------

async function talkView(visit, id) {
  const src = id ? `/talk?agent=${encodeURIComponent(id)}` : "/talk";
  show(visit, h("h1", {}, "Talk to an agent"), h("iframe", { class: "talk", src, title: "Talk to an agent", allow: "microphone" }));
}

// --- start -----------------------------------------------------------------------------------------

signIn()
  .then((signedIn) => (signedIn ? route() : signOut()))
  .catch((error) => signOut(error.message));
