// Reference Node socket.io server for scripts/bench-realtime, doing what mas-server does on the
// measured path: handshake auth (HS256 JWT in auth.token, then the account check — Redis cache
// `authz:user:<id>` for 30 s, PostgreSQL on a miss), `meeting:join` authorised against the
// meeting row (its mentor, its student or an admin), `signal:*` relayed to the room with acks,
// through the Redis adapter (@socket.io/redis-adapter, like socketioxide-redis in mas-server) or
// in memory.
//   env: PORT, JWT_SECRET, DATABASE_URL, REDIS_URL, ADAPTER=redis|memory, ADAPTER_KEY
import { createAdapter } from "@socket.io/redis-adapter";
import { createServer } from "node:http";
import IORedis from "ioredis";
import jwt from "jsonwebtoken";
import pg from "pg";
import { Server } from "socket.io";

const { PORT, JWT_SECRET, DATABASE_URL, REDIS_URL } = process.env;
const ADAPTER = process.env.ADAPTER || "redis";
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });

async function accountRole(userId) {
  const key = `authz:user:${userId}`;
  const cached = await redis.get(key).catch(() => null);
  if (cached) return cached === "missing" ? null : cached;
  const { rows } = await pool.query("select is_active, role from users where id = $1", [userId]);
  const role = rows[0]?.is_active ? rows[0].role : null;
  redis.set(key, role ?? "missing", "EX", 30).catch(() => {});
  return role;
}

const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 1e6 });
if (ADAPTER === "redis") {
  const pub = new IORedis(REDIS_URL);
  io.adapter(createAdapter(pub, pub.duplicate(), { key: process.env.ADAPTER_KEY || "bench-node-sio" }));
}
io.use(async (socket, next) => {
  try {
    const claims = jwt.verify(String(socket.handshake.auth?.token ?? ""), JWT_SECRET, { algorithms: ["HS256"] });
    const role = await accountRole(claims.sub);
    if (!role) return next(new Error("unauthorized: account not found or deactivated"));
    socket.data.claims = { ...claims, role };
    next();
  } catch (err) {
    next(new Error(`unauthorized: ${err.message}`));
  }
});
io.on("connection", (socket) => {
  const claims = socket.data.claims;
  socket.join(`user:${claims.sub}`);
  socket.on("meeting:join", async ({ meetingId }, ack) => {
    try {
      const { rows } = await pool.query("select mentor_id, student_id from meetings where id = $1", [meetingId]);
      const m = rows[0];
      const admin = claims.role === "admin" || claims.role === "superadmin";
      if (!m || !(admin || m.mentor_id === claims.sub || m.student_id === claims.sub)) {
        return ack?.({ ok: false, error: { code: "FORBIDDEN", message: "not a participant of this meeting" } });
      }
      socket.join(`meeting:${meetingId}`);
      ack?.({ ok: true, meetingId, socketId: socket.id, isHost: m.mentor_id === claims.sub });
    } catch (err) {
      ack?.({ ok: false, error: { code: "INTERNAL", message: err.message } });
    }
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
http.listen(Number(PORT), "127.0.0.1", () => console.log(`listening ${PORT} (${ADAPTER} adapter)`));
