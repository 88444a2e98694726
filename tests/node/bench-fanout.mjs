// Room fan-out load: R receivers and one sender join a meeting room over
// websocket; the sender relays M `signal:ice` messages (at most W unacked) and
// every receiver records send→receive latency. Prints one JSON result line.
//   node bench-fanout.mjs <url> <config json file>
// config: {meetingId, sender, receivers: [token..], messages, window}
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const [url, configPath] = process.argv.slice(2);
const cfg = JSON.parse(readFileSync(configPath, "utf8"));
const { meetingId, messages, window: win } = cfg;

function open(token) {
  return new Promise((resolve, reject) => {
    const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(new Error(e.message)));
  });
}

async function join(s) {
  const ack = await s.timeout(10000).emitWithAck("meeting:join", { meetingId });
  if (!ack.ok) throw new Error("join failed: " + JSON.stringify(ack));
}

async function round(sender, receivers, count) {
  const latencies = [];
  let received = 0;
  const expected = count * receivers.length;
  let done;
  const finished = new Promise((r) => (done = r));
  const handlers = receivers.map((s) => {
    const h = (msg) => {
      latencies.push(performance.now() - msg.payload.t);
      if (++received === expected) done();
    };
    s.on("signal:ice", h);
    return [s, h];
  });
  const started = performance.now();
  let inFlight = 0;
  let sent = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (inFlight < win && sent < count) {
        inFlight++;
        sent++;
        sender.emit("signal:ice", { meetingId, payload: { seq: sent, t: performance.now(), candidate: "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host" } }, () => {
          inFlight--;
          if (sent < count) pump();
          else if (inFlight === 0) resolve();
        });
      }
    };
    pump();
  });
  const timeout = new Promise((r) => setTimeout(r, 60000));
  await Promise.race([finished, timeout]);
  const seconds = (performance.now() - started) / 1000;
  for (const [s, h] of handlers) s.off("signal:ice", h);
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : null);
  return {
    receivers: receivers.length,
    messages: count,
    deliveries: received,
    lost: expected - received,
    seconds: +seconds.toFixed(3),
    deliveriesPerSec: Math.round(received / seconds),
    p50Ms: +pct(0.5).toFixed(2),
    p99Ms: +pct(0.99).toFixed(2),
  };
}

const sender = await open(cfg.sender);
const receivers = [];
for (const token of cfg.receivers) receivers.push(await open(token));
await join(sender);
for (const r of receivers) await join(r);
await round(sender, receivers, Math.min(200, messages)); // warm-up
const result = await round(sender, receivers, messages);
console.log(JSON.stringify(result));
for (const s of [sender, ...receivers]) s.disconnect();
process.exit(0);
