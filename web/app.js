// Agent chat: pick an agent, see your rooms and their history, send messages, watch replies stream.
// Plain JavaScript, no build step. Talks to the HTTP API with a bearer token:
//   - the local stack fills <meta name="agent-token"> for a browser on this machine (a user token);
//   - otherwise the page asks for one (deployed: your identity provider's JWT) and keeps it in sessionStorage.
// Replies stream as server-sent events (POST .../messages with Accept: text/event-stream): "chunk"
// events carry text as the model writes it, the last "result" event the stored reply and its actions.
// Rooms: the caller's rooms with the agent come from GET /agents/{agent}/rooms (any browser sees
// them), merged with the ones this browser has opened, per agent.
// Deployed (S3 behind CloudFront), `make publish-web` puts /web/config.json beside this file:
// {"apiUrl", "streamUrl"} from the stack's outputs. The page then calls the HTTP API at apiUrl and
// streams replies over the WebSocket API at streamUrl (the token in the `token` query parameter, as
// its $connect authorizer reads it; the frames are the same chunk/result/error as the events above).
// Locally there is no config.json: the page calls its own origin and streams server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: "", agents: [], agent: null, room: null };
const config = { apiUrl: "", streamUrl: "" };

async function loadConfig() {
  try {
    const response = await fetch("/web/config.json", { cache: "no-store" });
    if (response.ok) Object.assign(config, await response.json());
  } catch (error) {
    // no config.json (the local stack): same origin, server-sent events
  }
}

function token() {
  const meta = document.querySelector('meta[name="agent-token"]').content;
  return meta || sessionStorage.getItem("agent-token") || "";
}

async function api(method, path, body) {
  const response = await fetch(config.apiUrl + path, {
    method,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && (data.message || data.error)) || `HTTP ${response.status}`);
  return data;
}

function status(text) {
  $("status").textContent = text || "";
}

function roomsKey() {
  return `rooms:${state.agent.id}`;
}

function knownRooms() {
  return JSON.parse(localStorage.getItem(roomsKey()) || "[]");
}

function remember(roomId) {
  const rooms = knownRooms();
  if (!rooms.includes(roomId)) localStorage.setItem(roomsKey(), JSON.stringify([...rooms, roomId]));
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  const rooms = knownRooms();
  if (state.room && !rooms.includes(state.room)) rooms.push(state.room);
  for (const roomId of rooms) {
    const item = document.createElement("li");
    item.textContent = roomId.slice(0, 8);
    item.title = roomId;
    item.dataset.room = roomId;
    if (roomId === state.room) item.className = "current";
    item.onclick = () => openRoom(roomId);
    list.append(item);
  }
  if (!rooms.length) {
    const item = document.createElement("li");
    item.textContent = "direct messages";
    item.className = state.room ? "" : "current";
    list.append(item);
  }
}

function bubble(text, mine, name) {
  const item = document.createElement("li");
  item.className = mine ? "mine" : "agent";
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = name;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text; // replies are data: never rendered as HTML (docs/security.md)
  item.append(who, body);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function showActions(item, actions) {
  const row = document.createElement("div");
  row.className = "actions";
  row.setAttribute("aria-label", "actions");
  for (const action of actions || []) {
    const chip = document.createElement("span");
    chip.textContent = action;
    row.append(chip);
  }
  item.append(row);
}

async function openRoom(roomId) {
  state.room = roomId;
  renderRooms();
  $("messages").replaceChildren();
  if (!roomId) return;
  try {
    const history = await api("GET", `/agents/${state.agent.id}/rooms/${roomId}/messages?limit=100`);
    for (const message of history.messages) {
      const fromAgent = message.entityId === state.agent.id;
      const item = bubble(message.content.text || "", !fromAgent, fromAgent ? state.agent.name : "you");
      if (fromAgent) showActions(item, message.content.actions);
    }
  } catch (error) {
    status(`history: ${error.message}`); // a room not yet created (no message) is a 404
  }
}

function* sseEvents(buffer) {
  // Yields [event, data] for each complete event in buffer.text, keeping the rest.
  let end;
  while ((end = buffer.text.indexOf("\n\n")) >= 0) {
    const block = buffer.text.slice(0, end);
    buffer.text = buffer.text.slice(end + 2);
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) yield [kind, JSON.parse(data.join("\n"))];
  }
}

function onFrame(reply, kind, data) {
  // One streamed piece: "chunk" (text so far), "result" (the stored reply), "error" (thrown).
  const target = reply.querySelector(".text");
  if (kind === "chunk") {
    target.textContent += data.text;
    reply.scrollIntoView({ block: "end" });
  } else if (kind === "result") {
    const first = (data.body.responses || [])[0];
    target.textContent = first ? first.text : "(no reply)";
    showActions(reply, first ? first.actions : []);
    state.room = data.body.roomId;
    remember(state.room);
    renderRooms();
  } else if (kind === "error") {
    throw new Error(data.body ? data.body.message : `HTTP ${data.status}`);
  }
}

function streamOverWebSocket(body, reply) {
  // Deployed: one connection per message, closed after its result (or error) frame.
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${config.streamUrl}?token=${encodeURIComponent(state.token)}`);
    let finished = false;
    const finish = (error) => {
      finished = true;
      socket.close();
      if (error) reject(error);
      else resolve();
    };
    socket.onopen = () => socket.send(JSON.stringify({ action: "sendMessage", agent: state.agent.id, ...body }));
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      try {
        onFrame(reply, frame.type, frame);
        if (frame.type === "result") finish();
      } catch (error) {
        finish(error);
      }
    };
    socket.onclose = () => {
      if (!finished) reject(new Error("the stream closed before the reply (a refused or expired token?)"));
    };
  });
}

async function send(text) {
  bubble(text, true, "you");
  const reply = bubble("", false, state.agent.name);
  reply.classList.add("streaming");
  const body = { text };
  if (state.room) body.roomId = state.room;
  if (config.streamUrl) {
    await streamOverWebSocket(body, reply);
    reply.classList.remove("streaming");
    reply.dataset.done = "true";
    return;
  }
  const response = await fetch(`${config.apiUrl}/agents/${state.agent.id}/messages`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${state.token}`,
      "Content-Type": "application/json",
      Accept: "text/event-stream",
    },
    body: JSON.stringify(body),
  });
  const type = response.headers.get("content-type") || "";
  if (!type.startsWith("text/event-stream")) {
    const data = await response.json().catch(() => ({}));
    reply.remove();
    throw new Error(data.message || `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const buffer = { text: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer.text += decoder.decode(value, { stream: true });
    for (const [kind, data] of sseEvents(buffer)) onFrame(reply, kind, data);
  }
  reply.classList.remove("streaming");
  reply.dataset.done = "true";
}

async function syncRooms() {
  const { rooms } = await api("GET", `/agents/${state.agent.id}/rooms`);
  for (const room of rooms) remember(room.id);
}

async function chooseAgent(id) {
  state.agent = state.agents.find((a) => a.id === id);
  await syncRooms();
  const rooms = knownRooms();
  await openRoom(rooms.length ? rooms[rooms.length - 1] : null);
}

async function start() {
  await loadConfig();
  state.token = token();
  if (!state.token) {
    $("token-form").hidden = false;
    status("a bearer token is needed: `agent token` prints one for the local stack");
    return;
  }
  try {
    state.agents = (await api("GET", "/agents")).agents;
  } catch (error) {
    $("token-form").hidden = false;
    status(`agents: ${error.message}`);
    return;
  }
  const select = $("agent");
  select.replaceChildren(
    ...state.agents.map((a) => {
      const option = document.createElement("option");
      option.value = a.id;
      option.textContent = a.name;
      return option;
    }),
  );
  select.onchange = () => chooseAgent(select.value);
  if (state.agents.length) await chooseAgent(state.agents[0].id);
  document.body.dataset.ready = "true";
}

$("token-form").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem("agent-token", $("token").value.trim());
  $("token-form").hidden = true;
  status("");
  start();
};

$("new-room").onclick = () => {
  const roomId = crypto.randomUUID();
  state.room = roomId; // created by its first message
  $("messages").replaceChildren();
  renderRooms();
};

$("send").onsubmit = async (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || !state.agent) return;
  input.value = "";
  status("");
  try {
    await send(text);
  } catch (error) {
    status(error.message);
  }
};

start();
