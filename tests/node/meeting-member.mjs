// A meeting participant that follows the documented client protocol (docs/realtime.md):
// reconnects on its own, joins its meeting again after every (re)connect, sends a chat message
// every `everyMs` with a clientMessageId, and re-sends every message not yet acknowledged after a
// reconnect (the server stores a clientMessageId once). Used by the zero-downtime tests through
// the ingress.
//
//   node meeting-member.mjs '{"url":..,"token":..,"meetingId":..,"transport":"websocket"|"polling","everyMs":200}'
//
// Prints JSON lines: {"type":"joined","reconnectMs":..}, {"type":"disconnect","reason":..},
// and on "stop" (stdin) a final {"type":"summary",...}, then exits.
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(opts.url, {
  auth: { token: opts.token },
  transports: [opts.transport ?? "websocket"],
  upgrade: false,
  // Node keeps the ingress's sticky-session cookie only with withCredentials (socket.io-client >= 4.7).
  withCredentials: true,
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 1000,
  randomizationFactor: 0.3,
});

const pending = new Map(); // clientMessageId -> body
const acked = [];
let sent = 0;
let seq = 0;
let joined = false;
let disconnectedAt = null;
const reconnects = [];
let sending = true;

async function send(clientMessageId, body) {
  let retry = false;
  try {
    const ack = await socket.timeout(5000).emitWithAck("chat:send", { meetingId: opts.meetingId, body, clientMessageId });
    if (ack?.ok) {
      if (pending.delete(clientMessageId)) acked.push({ clientMessageId, id: ack.message?.id });
    } else {
      out({ type: "send_error", clientMessageId, error: ack?.error });
      retry = true;
    }
  } catch {
    // No ack in time: stays pending; re-sent below while connected, else after the next join.
    retry = true;
  }
  // The documented protocol (docs/realtime.md, step 4): re-send with the same id.
  if (retry && joined && pending.has(clientMessageId)) {
    setTimeout(() => {
      if (joined && pending.has(clientMessageId)) send(clientMessageId, body);
    }, 500);
  }
}

socket.on("connect", async () => {
  try {
    const ack = await socket.timeout(5000).emitWithAck("meeting:join", { meetingId: opts.meetingId });
    if (!ack?.ok) {
      out({ type: "join_error", error: ack?.error });
      return;
    }
    joined = true;
    const reconnectMs = disconnectedAt === null ? null : Date.now() - disconnectedAt;
    if (reconnectMs !== null) reconnects.push(reconnectMs);
    disconnectedAt = null;
    out({ type: "joined", reconnectMs, transport: socket.io.engine.transport.name });
    for (const [id, body] of pending) send(id, body);
  } catch (err) {
    out({ type: "join_error", error: String(err?.message ?? err) });
  }
});
socket.on("disconnect", (reason) => {
  joined = false;
  if (disconnectedAt === null) disconnectedAt = Date.now();
  out({ type: "disconnect", reason });
});
socket.on("connect_error", (err) => {
  if (disconnectedAt === null) disconnectedAt = Date.now();
  out({ type: "connect_error", message: err.message });
});

const timer = setInterval(() => {
  if (!sending || !joined) return;
  const id = randomUUID();
  const body = `m${++seq}`;
  pending.set(id, body);
  sent++;
  send(id, body);
}, opts.everyMs ?? 200);

async function stop() {
  sending = false;
  clearInterval(timer);
  // Retries keep running until every message is acknowledged or the deadline passes.
  const deadline = Date.now() + 10000;
  while (pending.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  out({
    type: "summary",
    sent,
    acked,
    unacked: [...pending.keys()],
    reconnects,
    stillDisconnected: disconnectedAt !== null,
  });
  socket.disconnect();
  process.exit(0);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "stop") stop();
});
out({ type: "ready" });
