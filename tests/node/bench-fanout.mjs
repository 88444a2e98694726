// Room fan-out load: R receivers and one sender join a meeting room over websocket; the sender
// relays M `signal:ice` messages (at most W unacked) and every receiver records send→receive
// latency. Receivers are spread over P child processes (IPC-coordinated) so the client side is
// not the bottleneck; each process reports its CPU use. Prints one JSON result line.
// With a rate the sender is paced (message k is sent no earlier than k/rate s after the start,
// still at most W unacked): latency at an offered load both servers sustain, instead of the
// queueing delay of a saturated run.
//   node bench-fanout.mjs <url> <config json file> [messages per second]
// config: {meetingId, sender, receivers: [token..], messages, window, processes}
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

// Epoch milliseconds with sub-millisecond resolution, comparable across processes.
const now = () => performance.timeOrigin + performance.now();

function open(url, token) {
  return new Promise((resolve, reject) => {
    const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(new Error(`connect failed: ${e.message}`)));
  });
}

async function join(s, meetingId) {
  const ack = await s.timeout(10000).emitWithAck("meeting:join", { meetingId });
  if (!ack.ok) throw new Error("meeting:join failed: " + JSON.stringify(ack));
}

// ------------------------------------------------------------------ receiver process
async function receiver() {
  const [url, meetingId, tokensJson] = process.argv.slice(3);
  const sockets = [];
  for (const t of JSON.parse(tokensJson)) {
    const s = await open(url, t);
    await join(s, meetingId);
    sockets.push(s);
  }
  let round = null;
  for (const s of sockets) {
    s.on("signal:ice", (msg) => {
      if (!round || msg.payload.round !== round.id) return;
      const t = now();
      round.latencies.push(t - msg.payload.t);
      round.last = t;
      if (round.latencies.length === round.expected) finish();
    });
  }
  const finish = () => {
    if (!round || round.done) return;
    round.done = true;
    clearTimeout(round.timer);
    const cpu = process.cpuUsage(round.cpu);
    process.send({
      type: "done",
      round: round.id,
      received: round.latencies.length,
      last: round.last,
      latencies: round.latencies,
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: now() - round.started,
    });
  };
  process.on("message", (m) => {
    if (m.type === "arm") {
      round = { id: m.round, expected: m.count * sockets.length, latencies: [], last: 0, cpu: process.cpuUsage(), started: now() };
      round.timer = setTimeout(finish, m.timeoutMs);
      process.send({ type: "armed" });
    } else if (m.type === "stop") {
      for (const s of sockets) s.disconnect();
      process.exit(0);
    }
  });
  process.send({ type: "ready" });
}

// ------------------------------------------------------------------ driver
async function driver() {
  const [url, configPath, rateArg] = process.argv.slice(2);
  const rate = Number(rateArg) || 0;
  const cfg = JSON.parse(readFileSync(configPath, "utf8"));
  const { meetingId, messages, window: win } = cfg;
  const procs = Math.max(1, Math.min(cfg.processes || 1, cfg.receivers.length));
  const children = [];
  const inbox = new Map();
  const waitAll = (type) =>
    Promise.all(
      children.map(
        (c) =>
          new Promise((resolve, reject) => {
            const onMsg = (m) => {
              if (m.type === type) {
                c.off("message", onMsg);
                resolve(m);
              }
            };
            c.on("message", onMsg);
            c.once("exit", (code) => reject(new Error(`receiver process exited (${code}) before '${type}'`)));
          }),
      ),
    );
  for (let i = 0; i < procs; i++) {
    const mine = cfg.receivers.filter((_, j) => j % procs === i);
    children.push(fork(new URL(import.meta.url), ["--receiver", url, meetingId, JSON.stringify(mine)], { stdio: ["ignore", "inherit", "inherit", "ipc"] }));
  }
  inbox.clear();
  await waitAll("ready");
  const sender = await open(url, cfg.sender);
  await join(sender, meetingId);

  async function round(id, count) {
    const armed = waitAll("armed");
    for (const c of children) c.send({ type: "arm", round: id, count, timeoutMs: cfg.timeoutMs || 60000 });
    await armed;
    const done = waitAll("done");
    const cpu0 = process.cpuUsage();
    const started = now();
    let inFlight = 0;
    let sent = 0;
    let nacks = 0;
    let timer = null;
    await new Promise((resolve) => {
      const pump = () => {
        while (inFlight < win && sent < count) {
          // Paced: wait for this message's slot (in the warm-up round too).
          const wait = rate ? started + (sent * 1000) / rate - now() : 0;
          if (wait > 0) {
            timer ??= setTimeout(() => {
              timer = null;
              pump();
            }, wait);
            return;
          }
          inFlight++;
          sent++;
          const payload = { round: id, seq: sent, t: now(), candidate: "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host" };
          sender.emit("signal:ice", { meetingId, payload }, (ack) => {
            if (!ack?.ok) nacks++;
            inFlight--;
            if (sent < count) pump();
            else if (inFlight === 0) resolve();
          });
        }
      };
      pump();
    });
    const reports = await done;
    const senderCpu = process.cpuUsage(cpu0);
    const senderWall = now() - started;
    const received = reports.reduce((a, r) => a + r.received, 0);
    const expected = count * cfg.receivers.length;
    const end = Math.max(...reports.map((r) => r.last), started + 1);
    const seconds = (end - started) / 1000;
    const latencies = reports.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const pct = (p) => (latencies.length ? +latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(2) : null);
    const cpuPct = reports.map((r) => +((100 * r.cpuMs) / Math.max(1, r.wallMs)).toFixed(1));
    return {
      receivers: cfg.receivers.length,
      messages: count,
      window: win,
      rate: rate || null,
      clientProcesses: procs + 1,
      deliveries: received,
      lost: expected - received,
      nacks,
      seconds: +seconds.toFixed(3),
      deliveriesPerSec: Math.round(received / seconds),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      senderCpuPct: +((100 * (senderCpu.user + senderCpu.system)) / 1000 / senderWall).toFixed(1),
      receiverCpuPct: cpuPct,
      maxClientCpuPct: Math.max(...cpuPct, +((100 * (senderCpu.user + senderCpu.system)) / 1000 / senderWall).toFixed(1)),
    };
  }

  await round(1, Math.max(1, Math.min(200, Math.floor(messages / 4)))); // warm-up
  const result = await round(2, messages);
  console.log(JSON.stringify(result));
  for (const c of children) c.send({ type: "stop" });
  sender.disconnect();
  setTimeout(() => process.exit(0), 200);
}

if (process.argv[2] === "--receiver") await receiver();
else await driver();
