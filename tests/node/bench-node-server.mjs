// Reference Node socket.io server for scripts/bench-realtime: same handshake
// auth (HS256 JWT in auth.token), same meeting:join / signal:* room relay with
// acks, in-memory adapter (one process).   node bench-node-server.mjs <port> <jwt secret>
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

const [port, secret] = process.argv.slice(2);

function verify(token) {
  const [h, p, s] = String(token ?? "").split(".");
  if (!h || !p || !s) throw new Error("unauthorized: access token is malformed");
  const expected = createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, "base64url");
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new Error("unauthorized: access token signature is invalid");
  }
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  if (claims.exp * 1000 < Date.now()) throw new Error("unauthorized: access token expired");
  return claims;
}

const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 1e6 });
io.use((socket, next) => {
  try {
    socket.data.claims = verify(socket.handshake.auth?.token);
    next();
  } catch (err) {
    next(err);
  }
});
io.on("connection", (socket) => {
  const claims = socket.data.claims;
  socket.join(`user:${claims.sub}`);
  socket.on("meeting:join", ({ meetingId }, ack) => {
    socket.join(`meeting:${meetingId}`);
    ack?.({ ok: true, meetingId, socketId: socket.id });
  });
  for (const event of ["signal:offer", "signal:answer", "signal:ice"]) {
    socket.on(event, (req, ack) => {
      if (!socket.rooms.has(`meeting:${req.meetingId}`)) {
        return ack?.({ ok: false, error: { code: "FORBIDDEN", message: "join the meeting first" } });
      }
      socket.to(`meeting:${req.meetingId}`).emit(event, {
        meetingId: req.meetingId,
        from: { userId: claims.sub, socketId: socket.id },
        payload: req.payload,
      });
      ack?.({ ok: true });
    });
  }
});
http.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
