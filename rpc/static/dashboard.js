// The live dashboard (docs/API.md, "The dashboard"): the calls in progress, kept current from the Call API itself.
//
// It follows the API's recovery recipe ("Live call state"): every page of CallList (the first page's seq is S),
// then Subscribe {"since": S}, then each CallEvent applied by value. On every (re)connection, on -32005 (the
// events after S are gone) or -32602 (S from another run of the service), and on SubscriptionLost, it rebuilds
// from CallList: a page kept open for days never drifts from the service. Reconnects back off from 0.25 s to 8 s.
// The token is the page's own ?token=, passed on to the WebSocket; the API's path is index.html's <meta>.

const PAGE = 1000;            // CallList's largest page
const LOG_LINES = 300;        // the event log keeps the newest lines only
const RETRY = [250, 8000];    // reconnect backoff, first and longest wait (ms)
const RESYNC_CODES = new Set([-32005, -32602]);

const params = new URLSearchParams(location.search);
const token = params.get("token");
const apiPath = document.querySelector('meta[name="call-api-path"]')?.content || "/call-api";
const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${apiPath}` +
  (token ? `?token=${encodeURIComponent(token)}` : "");

const table = document.querySelector("#calls");
const tbody = table.querySelector("tbody");
const statusLine = document.querySelector("#status");
const counts = document.querySelector("#counts");
const log = document.querySelector("#log");

let calls = new Map();        // callid -> Call object (docs/API.md), as the events left it
let seq = null;               // the seq of the last event applied (or of the CallList the table came from)
let socket = null;            // the WebSocket in use
let nextId = 1;
let retry = RETRY[0];
const pending = new Map();    // request id -> {resolve, reject}
const commands = new Map();   // cmd_id -> method, for the commands this page started

// -- the connection -------------------------------------------------------------------------------------------

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text || state;
}

function connect() {
  setStatus("connecting", `connecting to ${apiPath}`);
  const ws = new WebSocket(wsUrl);
  socket = ws;
  ws.onopen = () => {
    retry = RETRY[0];
    resync(ws);
  };
  ws.onmessage = (message) => {
    if (ws === socket) receive(JSON.parse(message.data));
  };
  ws.onclose = (close) => {
    if (ws !== socket) return;
    socket = null;
    for (const { reject } of pending.values()) reject({ code: 0, message: "connection lost" });
    pending.clear();
    const wait = retry;
    retry = Math.min(2 * retry, RETRY[1]);
    setStatus("offline", `offline (${close.code || "no answer"}): reconnecting in ${(wait / 1000).toFixed(1)} s`);
    note(`connection closed (${close.code}${close.reason ? " " + close.reason : ""})`, true);
    setTimeout(connect, wait);
  };
}

// One JSON-RPC request on the current connection: resolves with its result, rejects with its error object.
function request(method, params) {
  return new Promise((resolve, reject) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      reject({ code: 0, message: "not connected" });
      return;
    }
    const id = nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
  });
}

function receive(message) {
  if (!("method" in message)) {
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (waiting && "error" in message) waiting.reject(message.error);
    else if (waiting) waiting.resolve(message.result);
    return;
  }
  const p = message.params || {};
  switch (message.method) {
    case "CallEvent":
      if (seq !== null && p.seq > seq) {
        apply(p);
        seq = p.seq;
        table.dataset.seq = seq;
        note(describe(p));
      }
      break;
    case "SubscriptionLost":
      note(`subscription lost at seq ${p.seq}: reading CallList again`, true);
      resync(socket);
      break;
    case "Event":
      note(`${commands.get(p.cmd_id) || "command"} ${p.data}${p.leg ? " " + p.leg : ""}` +
           `${p.status ? " (" + p.status + ")" : ""}`);
      break;
    case "Error":
      note(`${commands.get(p.cmd_id) || "command"} failed: ${p.code} ${p.message}`, true);
      break;
    case "Ended":
      note(`${commands.get(p.cmd_id) || "command"} ended`);
      commands.delete(p.cmd_id);
      break;
  }
}

// The recovery recipe: every page of CallList, then Subscribe since the first page's seq; again from CallList
// when the service no longer has those events.
async function resync(ws) {
  setStatus("syncing", "reading CallList");
  seq = null;
  try {
    for (;;) {
      const fresh = new Map();
      let first = null;
      let cursor = null;
      do {
        const page = await request("CallList", cursor === null ? { limit: PAGE } : { limit: PAGE, cursor });
        first ??= page.seq;
        for (const call of page.calls) fresh.set(call.callid, call);
        cursor = page.next_cursor;
      } while (cursor !== null && cursor !== undefined);
      calls = fresh;
      renderAll();
      try {
        const answer = await request("Subscribe", { since: first });
        seq = first;  // the events since `first` come next, right after this answer
        table.dataset.seq = seq;
        setStatus("live", `live: ${answer.subscription}`);
        note(`live from seq ${first}: ${calls.size} calls`);
        return;
      } catch (error) {
        if (!RESYNC_CODES.has(error.code)) throw error;
        note(`Subscribe since ${first}: ${error.message}; reading CallList again`, true);
      }
    }
  } catch (error) {
    note(`resync failed: ${error.message}`, true);
    if (ws === socket) ws.close();
  }
}

// -- the table kept from the events (by value: an event older than a snapshot sets nothing a later one won't) --

function apply(p) {
  switch (p.event) {
    case "created":
      calls.set(p.callid, p.call);
      return renderRow(p.call);
    case "replaced":
      calls.delete(p.callid);
      calls.set(p.call.callid, p.call);
      return renderRow(p.call, p.callid);
    case "ended":
      calls.delete(p.callid);
      return removeRow(p.callid);
  }
  const call = calls.get(p.callid);
  if (!call) return;
  switch (p.event) {
    case "ringing": call.state = "early"; break;
    case "answered": call.state = "answered"; call.answered = p.time; break;
    case "ending": call.state = "ending"; break;
    case "media": if (call.legs[p.leg]) call.legs[p.leg].direction = p.direction; break;
    case "held": case "resumed": if (call.legs[p.leg]) call.legs[p.leg].held = p.event === "held"; break;
    case "command":
      call.command = p.outcome === "started" ? { cmd_id: p.cmd_id, method: p.method } : null;
      break;
    default: return;  // transferred, and events a newer service adds
  }
  renderRow(call);
}

function describe(p) {
  const extra = { ringing: p.status, media: `${p.leg} ${p.direction} by ${p.by}`, held: p.leg, resumed: p.leg,
    transferred: `${p.leg} to ${p.new}`, replaced: `${p.leg}: ${p.old} by ${p.new}`,
    command: `${p.method} ${p.outcome}`, ended: `${p.reason} ${p.leg || p.code || ""}`.trim() }[p.event];
  return `#${p.seq} ${p.callid} ${p.event}${extra ? " " + extra : ""}`;
}

// -- rendering (textContent only: every value comes from the network) -------------------------------------

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

// "Alice" <sip:alice@example.com>;tag=1 -> Alice <alice@example.com>; <sip:bob@example.com>;tag=2 -> bob@example.com
function party(uri) {
  if (!uri) return "?";
  const match = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<]*?))\s*<([^>]*)>/.exec(uri);
  const address = (match ? match[3] : uri.split(";")[0]).replace(/^(sips?|tel):/, "");
  const name = match && (match[1] ?? match[2]);
  return name ? `${name} <${address}>` : address;
}

function newRow(callid) {
  const row = element("tr", { "data-callid": callid });
  row.append(element("td", { class: "callid" }), element("td", { class: "parties" }),
    element("td", { class: "state" }));
  for (const leg of ["caller", "callee"]) {
    const cell = element("td", { class: "leg", "data-leg": leg });
    cell.append(element("span", { class: "direction" }),
      element("button", { type: "button", "data-action": "hold", "data-leg": leg }, "Hold"));
    row.append(cell);
  }
  row.append(element("td", { class: "duration" }), element("td", { class: "command" }));
  const actions = element("td", { class: "actions" });
  const blind = element("form", { class: "blind" });
  const leg = element("select", { name: "leg", "aria-label": "party to transfer" });
  leg.append(element("option", { value: "callee" }, "callee"), element("option", { value: "caller" }, "caller"));
  blind.append(leg, element("input", { name: "destination", placeholder: "destination URI",
    "aria-label": "transfer destination", required: "" }),
    element("button", { type: "submit", "data-action": "blind" }, "Transfer"));
  actions.append(element("button", { type: "button", "data-action": "end" }, "End"), blind);
  row.append(actions);
  return row;
}

// Creates the row of `call`, or updates it in place (a half-typed destination survives); `was` is the name the
// row had before a `replaced` event renamed the call.
function renderRow(call, was = call.callid) {
  let row = tbody.querySelector(`tr[data-callid="${CSS.escape(was)}"]`);
  if (row && was !== call.callid) tbody.querySelector(`tr[data-callid="${CSS.escape(call.callid)}"]`)?.remove();
  if (!row) row = tbody.querySelector(`tr[data-callid="${CSS.escape(call.callid)}"]`);
  if (!row) tbody.append(row = newRow(call.callid));
  row.dataset.callid = call.callid;
  row.dataset.state = call.state;
  const caller = call.legs.caller, callee = call.legs.callee;
  row.querySelector(".callid").textContent = call.callid;
  row.querySelector(".parties").textContent =
    `${party(caller?.remote_uri)} \u2192 ${party(callee?.remote_uri ?? caller?.local_uri)}`;
  row.querySelector(".state").textContent = call.state;
  for (const name of ["caller", "callee"]) {
    const leg = call.legs[name];
    const cell = row.querySelector(`td.leg[data-leg="${name}"]`);
    cell.dataset.present = String(Boolean(leg));
    cell.dataset.direction = leg?.direction ?? "";
    cell.dataset.held = String(Boolean(leg?.held));
    cell.querySelector(".direction").textContent = leg ? `${leg.direction ?? "no SDP"}${leg.held ? ", held" : ""}` : "-";
    const button = cell.querySelector("button");
    button.hidden = !leg || call.state !== "answered";  // CallHold needs an answered call (else -32002)
    button.dataset.action = leg?.held ? "resume" : "hold";
    button.textContent = leg?.held ? "Resume" : "Hold";
  }
  row.dataset.created = call.created;
  row.dataset.answered = call.answered ?? "";
  const command = row.querySelector(".command");
  command.dataset.command = call.command?.method ?? "";
  command.textContent = call.command ? call.command.method : "";
  tick(row);
  showCounts();
}

function removeRow(callid) {
  tbody.querySelector(`tr[data-callid="${CSS.escape(callid)}"]`)?.remove();
  showCounts();
}

function renderAll() {
  tbody.replaceChildren();
  for (const call of calls.values()) renderRow(call);
  showCounts();
}

function showCounts() {
  counts.textContent = `${calls.size} call${calls.size === 1 ? "" : "s"}`;
}

// Duration: since the answer, or "ringing 0:04" since the call was created.
function tick(row) {
  const since = row.dataset.answered || row.dataset.created;
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  const text = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  row.querySelector(".duration").textContent = row.dataset.answered ? text : `setup ${text}`;
}

function note(text, error = false) {
  const line = element("li", error ? { class: "error" } : {});
  line.append(element("time", {}, new Date().toISOString().slice(11, 23)), text);
  log.prepend(line);
  while (log.childElementCount > LOG_LINES) log.lastElementChild.remove();
}

// -- the actions: each sends one command; what it reports goes to the log ----------------------------------

async function send(method, params) {
  try {
    const result = await request(method, params);
    commands.set(result.cmd_id, method);
    note(`${method} started (${result.cmd_id})`);
  } catch (error) {
    note(`${method} refused: ${error.code} ${error.message}`, true);
  }
}

tbody.addEventListener("click", (click) => {
  const button = click.target.closest("button[data-action]");
  const row = click.target.closest("tr[data-callid]");
  if (!button || !row || button.type === "submit") return;
  const callid = row.dataset.callid;
  if (button.dataset.action === "end") send("CallEnd", { callid });
  else send(button.dataset.action === "hold" ? "CallHold" : "CallUnHold", { callid, leg: button.dataset.leg });
});

tbody.addEventListener("submit", (submit) => {
  submit.preventDefault();
  const form = submit.target;
  const callid = form.closest("tr[data-callid]").dataset.callid;
  send("CallBlindTransfer", { callid, leg: form.elements.leg.value, destination: form.elements.destination.value });
});

document.querySelector("#start").addEventListener("submit", (submit) => {
  submit.preventDefault();
  const form = submit.target;
  send("CallStart", { caller: form.elements.caller.value, callee: form.elements.callee.value });
});

// What tests and a curious engineer can read from the console: the table as the page holds it.
window.callApiDashboard = Object.freeze({
  calls: () => structuredClone([...calls.values()]),
  seq: () => seq,
  state: () => statusLine.dataset.state,
});

setInterval(() => tbody.querySelectorAll("tr[data-callid]").forEach(tick), 1000);
connect();
