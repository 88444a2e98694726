// Socket.IO test agent (socket.io-client). Reads JSON commands on stdin, one
// per line, and prints one JSON object per line for everything that happens:
//   {"cmd":"connect","url":..,"token":..,"transports":["websocket"],"reconnection":false}
//   {"cmd":"emit","id":1,"event":"meeting:join","data":{..}}   -> {"type":"ack","id":1,"data":..}
//   {"cmd":"disconnect"} | {"cmd":"exit"}
// Events: connected, connect_error, disconnect, event (any server event).
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

let socket = null;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function connect(cmd) {
  const auth = cmd.token === undefined ? {} : { token: cmd.token };
  socket = io(cmd.url, {
    auth,
    transports: cmd.transports ?? ["polling", "websocket"],
    reconnection: cmd.reconnection ?? false,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    extraHeaders: cmd.origin ? { Origin: cmd.origin } : undefined,
  });
  socket.on("connect", () => out({ type: "connected", sid: socket.id, transport: socket.io.engine.transport.name }));
  socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
  socket.io.engine?.on("upgrade", (t) => out({ type: "upgrade", transport: t.name }));
  socket.onAny((event, ...args) => out({ type: "event", event, data: args[0] ?? null }));
}

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case "connect":
        connect(cmd);
        break;
      case "emit": {
        const data = await socket.timeout(cmd.timeoutMs ?? 5000).emitWithAck(cmd.event, cmd.data);
        out({ type: "ack", id: cmd.id, data });
        break;
      }
      case "disconnect":
        socket?.disconnect();
        break;
      case "exit":
        socket?.disconnect();
        process.exit(0);
    }
  } catch (err) {
    out({ type: "error", id: cmd.id, message: String(err?.message ?? err) });
  }
});
rl.on("close", () => process.exit(0));
out({ type: "ready", client: "socket.io-client" });
