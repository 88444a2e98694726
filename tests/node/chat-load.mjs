// Chat load for the fault tests (server/tests/it/security_faults.rs, scripts/bench-faults):
// one socket.io-client that joins a meeting and sends `count` chat messages, one every
// `intervalMs`, following the documented client protocol across reconnects
// (docs/realtime.md): every message keeps its clientMessageId until acked, is re-sent after
// a reconnect (after meeting:join again) and retried while the server refuses it.
//   node chat-load.mjs <url> <token> <meetingId> <count> <intervalMs> <deadlineMs>
// Prints one JSON line per event: connected, disconnect, acked {clientMessageId, id},
// refused {code}, and at the end done {acked, pending, reconnects}. Bounded: it stops at
// `deadlineMs` whatever happens.
import { io } from "socket.io-client";
import { randomUUID } from "node:crypto";

const [url, token, meetingId, countArg, intervalArg, deadlineArg] = process.argv.slice(2);
const count = Number(countArg);
const interval = Number(intervalArg);
const deadline = Date.now() + Number(deadlineArg);
const out = (obj) => process.stdout.write(JSON.stringify({ at: Date.now(), ...obj }) + "\n");

const pending = new Map(); // clientMessageId -> body
const acked = new Set();
let joined = false;
let reconnects = 0;
let connectedOnce = false;

const socket = io(url, {
  auth: { token },
  transports: ["websocket"],
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
  timeout: 3000,
});

async function join() {
  try {
    const ack = await socket.timeout(3000).emitWithAck("meeting:join", { meetingId });
    joined = ack?.ok === true;
    if (!joined) out({ type: "join_refused", error: ack?.error });
  } catch (e) {
    joined = false;
  }
}

socket.on("connect", async () => {
  if (connectedOnce) reconnects += 1;
  connectedOnce = true;
  out({ type: "connected", sid: socket.id });
  await join();
  flush();
});
socket.on("disconnect", (reason) => {
  joined = false;
  out({ type: "disconnect", reason });
});
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));

async function send(id) {
  const body = pending.get(id);
  if (body === undefined || !socket.connected || !joined) return;
  try {
    const ack = await socket.timeout(3000).emitWithAck("chat:send", { meetingId, body, clientMessageId: id });
    if (ack?.ok) {
      if (pending.delete(id)) {
        acked.add(id);
        out({ type: "acked", clientMessageId: id, id: ack.message.id });
      }
    } else {
      out({ type: "refused", code: ack?.error?.code });
      // Not joined any more (e.g. the meeting room was lost with a replica): join again.
      if (ack?.error?.code === "FORBIDDEN") joined = false, join();
    }
  } catch (e) {
    // Timed out (server gone mid-flight): stays pending, re-sent later.
  }
}

function flush() {
  for (const id of pending.keys()) send(id);
}

let sent = 0;
const producer = setInterval(() => {
  if (sent >= count || Date.now() > deadline) return clearInterval(producer);
  const id = randomUUID();
  pending.set(id, `load message ${sent}`);
  sent += 1;
  send(id);
}, interval);
const retry = setInterval(flush, 500);

const finish = setInterval(() => {
  const done = sent >= count && pending.size === 0;
  if (done || Date.now() > deadline) {
    clearInterval(finish);
    clearInterval(retry);
    clearInterval(producer);
    out({ type: "done", acked: acked.size, pending: pending.size, reconnects });
    socket.disconnect();
    setTimeout(() => process.exit(0), 100);
  }
}, 100);
