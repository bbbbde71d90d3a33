// voxline web client: pick an agent, press Start, talk (docs/browser-protocol.md).
// No framework, no build step, nothing fetched from elsewhere.

const SAMPLE_RATE = 16000; // what we send, and ask the server to send back
const FRAME_SAMPLES = 320; // 20 ms of microphone audio per binary frame
const END_GRACE_MS = 3000; // how long Stop waits for session.ended before closing
const KEY_STORAGE = "voxline.apiKey";

const $ = (id) => document.getElementById(id);
const ui = {
  keyPanel: $("key-panel"),
  keyForm: $("key-form"),
  apiKey: $("api-key"),
  agent: $("agent"),
  start: $("start"),
  stop: $("stop"),
  status: $("status"),
  transcript: $("transcript"),
  partial: $("partial"),
  textForm: $("text-form"),
  text: $("text"),
  send: $("send"),
};

let devMode = false;
let session = null; // the live session, see startSession()

// --- agents and tokens ------------------------------------------------------------------

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function loadAgents() {
  const dev = await fetch("/v1/dev/agents").catch(() => null);
  if (dev && dev.ok) {
    devMode = true;
    ui.keyPanel.hidden = true;
    showAgents((await dev.json()).data);
    return;
  }
  ui.keyPanel.hidden = false;
  if (!apiKey()) {
    setStatus("Paste an API key to list this server's agents.");
    return;
  }
  const response = await fetch("/v1/agents?limit=100", {
    headers: { Authorization: `Bearer ${apiKey()}` },
  });
  if (!response.ok) {
    setStatus(`Could not list agents: ${await errorMessage(response)}`);
    return;
  }
  showAgents((await response.json()).data);
}

function showAgents(agents) {
  ui.agent.replaceChildren(
    ...agents.map((agent) => {
      const option = document.createElement("option");
      option.value = agent.id;
      option.textContent = `${agent.name} (${agent.id})`;
      return option;
    }),
  );
  const wanted = new URLSearchParams(location.search).get("agent");
  if (agents.some((agent) => agent.id === wanted)) ui.agent.value = wanted;
  const any = agents.length > 0;
  ui.agent.disabled = !any;
  ui.start.disabled = !any;
  setStatus(any ? "Press Start and speak." : "This server has no agents yet.");
}

async function requestToken(agentId) {
  const response = devMode
    ? await fetch("/v1/dev/session-token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ agentId }),
      })
    : await fetch(`/v1/agents/${encodeURIComponent(agentId)}/session-token`, {
        method: "POST",
        headers: { Authorization: `Bearer ${apiKey()}`, "Content-Type": "application/json" },
        body: "{}",
      });
  if (!response.ok) throw new Error(await errorMessage(response));
  return (await response.json()).token;
}

async function errorMessage(response) {
  try {
    return (await response.json()).error.message;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// --- the session ------------------------------------------------------------------------

async function startSession() {
  const agentId = ui.agent.value;
  ui.start.disabled = true;
  ui.agent.disabled = true;
  ui.transcript.replaceChildren();
  setStatus("Connecting…");
  const current = { socket: null, audio: null, started: false, ended: false, bubbles: new Map() };
  session = current;
  try {
    const token = await requestToken(agentId);
    current.audio = await openAudio();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const path = `/v1/agents/${encodeURIComponent(agentId)}/session`;
    const socket = new WebSocket(`${scheme}//${location.host}${path}?token=${encodeURIComponent(token)}`);
    socket.binaryType = "arraybuffer";
    current.socket = socket;
    socket.onopen = () => send({ type: "start", sampleRate: SAMPLE_RATE });
    socket.onmessage = (message) => onMessage(current, message.data);
    socket.onclose = (event) => onClose(current, event);
    current.audio.capture.port.onmessage = (event) => {
      if (current.started && socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    current.audio.playback.port.onmessage = (event) => {
      if (event.data.type === "mark") send({ type: "mark", name: event.data.name });
    };
    ui.stop.disabled = false;
  } catch (error) {
    addLine("error", `Could not start: ${error.message}`);
    teardown(current, "Not connected.");
  }
}

async function openAudio() {
  const context = new AudioContext({ latencyHint: "interactive" });
  await context.audioWorklet.addModule("/web/audio-worklet.js");
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const capture = new AudioWorkletNode(context, "pcm-capture", {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    processorOptions: { targetRate: SAMPLE_RATE, frameSamples: FRAME_SAMPLES },
  });
  const playback = new AudioWorkletNode(context, "pcm-playback", {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: { inputRate: SAMPLE_RATE },
  });
  context.createMediaStreamSource(stream).connect(capture);
  playback.connect(context.destination);
  await context.resume();
  return { context, stream, capture, playback };
}

function send(message) {
  const socket = session && session.socket;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function onMessage(current, data) {
  if (session !== current) return;
  if (data instanceof ArrayBuffer) {
    current.audio.playback.port.postMessage({ type: "audio", pcm: data }, [data]);
    return;
  }
  const event = JSON.parse(data);
  switch (event.type) {
    case "session.started":
      current.started = true;
      setStatus(`Connected (${event.sessionId}): speak now.`, true);
      ui.text.disabled = false;
      ui.send.disabled = false;
      break;
    case "mark":
      current.audio.playback.port.postMessage({ type: "mark", name: event.name });
      break;
    case "clear":
      current.audio.playback.port.postMessage({ type: "clear" });
      break;
    case "agent.interrupted":
      current.audio.playback.port.postMessage({ type: "clear" });
      markInterrupted(current, event);
      break;
    case "transcript.partial":
      ui.partial.textContent = event.text;
      break;
    case "transcript.final":
      ui.partial.textContent = "";
      addBubble("caller", "You", event.text);
      break;
    case "agent.text":
      agentSaid(current, event);
      break;
    case "tool.call":
      addLine("system", `Tool ${event.name} called`);
      break;
    case "tool.result":
      addLine("system", `Tool ${event.name}: ${event.content}`);
      break;
    case "turn.metrics":
      showLatency(current, event);
      break;
    case "session.ended":
      current.ended = true;
      teardown(current, `Session ended (${event.reason}).`);
      break;
    case "error":
      addLine("error", event.message);
      break;
  }
}

function onClose(current, event) {
  if (current.ended) return;
  if (event.code !== 1000 && event.reason) addLine("error", event.reason);
  teardown(current, "Disconnected.");
}

function stopSession() {
  const current = session;
  if (!current) return;
  ui.stop.disabled = true;
  setStatus("Ending…");
  send({ type: "end" });
  setTimeout(() => teardown(current, "Session ended."), END_GRACE_MS);
}

function teardown(current, status) {
  if (session !== current) return;
  session = null;
  if (current.socket && current.socket.readyState <= WebSocket.OPEN) current.socket.close(1000);
  if (current.audio) {
    current.audio.stream.getTracks().forEach((track) => track.stop());
    current.audio.context.close();
  }
  ui.partial.textContent = "";
  ui.stop.disabled = true;
  ui.text.disabled = true;
  ui.send.disabled = true;
  ui.agent.disabled = false;
  ui.start.disabled = false;
  setStatus(status);
}

// --- the transcript ---------------------------------------------------------------------

function agentSaid(current, event) {
  let bubble = current.bubbles.get(event.response);
  if (!bubble) {
    bubble = addBubble("agent", "Agent", "");
    bubble.dataset.response = event.response;
    current.bubbles.set(event.response, bubble);
    current.lastAgent = bubble;
  }
  const said = bubble.querySelector(".said");
  said.textContent = said.textContent ? `${said.textContent} ${event.text}` : event.text;
}

function markInterrupted(current, event) {
  const bubble = current.bubbles.get(event.response);
  if (!bubble) return;
  const heard = (event.heardText || "").trim();
  const said = bubble.querySelector(".said");
  const full = event.text || said.textContent;
  const unheard = full.startsWith(heard) ? full.slice(heard.length).trim() : "";
  said.textContent = heard;
  if (unheard) {
    const cut = document.createElement("span");
    cut.className = "unheard";
    cut.textContent = unheard;
    cut.title = "Not heard: you interrupted";
    said.after(" ", cut);
  }
}

function showLatency(current, metrics) {
  const bubble = current.lastAgent;
  if (!bubble || metrics.turnLatencyMs == null || bubble.querySelector(".latency")) return;
  const badge = document.createElement("span");
  badge.className = "latency";
  badge.textContent = `turn ${metrics.turn} · ${Math.round(metrics.turnLatencyMs)} ms`;
  const parts = [
    ["end of turn", metrics.endOfTurnWaitMs],
    ["speech to text", metrics.sttMs],
    ["LLM first token", metrics.llmFirstTokenMs],
    ["TTS first byte", metrics.ttsFirstByteMs],
    ["overhead", metrics.overheadMs],
  ].filter(([, value]) => value != null);
  badge.title = parts.map(([name, value]) => `${name}: ${Math.round(value)} ms`).join("\n");
  bubble.querySelector(".who").append(badge);
}

function addBubble(kind, who, text) {
  const item = document.createElement("li");
  item.className = kind;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who;
  const said = document.createElement("span");
  said.className = "said";
  said.textContent = text;
  item.append(label, said);
  ui.transcript.append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function addLine(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  ui.transcript.append(item);
}

function setStatus(text, live = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("live", live);
}

// --- wiring -----------------------------------------------------------------------------

ui.start.addEventListener("click", startSession);
ui.stop.addEventListener("click", stopSession);
ui.textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  send({ type: "text", text });
  ui.text.value = "";
});
ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
  ui.apiKey.value = "";
  loadAgents();
});

loadAgents().catch((error) => setStatus(`Could not load agents: ${error.message}`));
