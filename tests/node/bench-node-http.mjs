// Node HTTP peer for scripts/bench-server: the stack mas-server replaces (Express 5 + helmet +
// cors + pg + ioredis + jsonwebtoken, one process as in the seed) serving the routes the
// benchmark measures, doing the same work as mas-server per request:
//   GET /api/health        PostgreSQL `select 1` and Redis PING concurrently, 200/503 report
//   GET /api/health/live   no dependency
//   GET /api/slots         JWT (HS256) + account check (Redis cache `authz:user:<id>`, 30 s,
//                          PostgreSQL on a miss) + count + page of open future slots
//   GET /api/meetings      JWT + account check + count + page of the caller's meetings
// env: PORT, DATABASE_URL, REDIS_URL, JWT_SECRET, DATABASE_MAX_CONNECTIONS (20, as mas-server)
// Prints "listening <port>" once it accepts connections.
import cors from "cors";
import express from "express";
import helmet from "helmet";
import IORedis from "ioredis";
import jwt from "jsonwebtoken";
import pg from "pg";

const { PORT, DATABASE_URL, REDIS_URL, JWT_SECRET } = process.env;
for (const [k, v] of Object.entries({ PORT, DATABASE_URL, REDIS_URL, JWT_SECRET })) {
  if (!v) throw new Error(`${k} is required`);
}
const started = Date.now();
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: Number(process.env.DATABASE_MAX_CONNECTIONS || 20) });
const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1 });
const CACHE_TTL = 30;

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function page(req) {
  const p = req.query.page === undefined ? 1 : Number(req.query.page);
  const per = req.query.perPage === undefined ? 20 : Number(req.query.perPage);
  if (!Number.isInteger(p) || p < 1) throw new HttpError(400, "VALIDATION_ERROR", "page must be at least 1");
  if (!Number.isInteger(per) || per < 1 || per > 100) {
    throw new HttpError(400, "VALIDATION_ERROR", "perPage must be between 1 and 100");
  }
  return { page: p, perPage: per, limit: per, offset: (p - 1) * per };
}

// Same contract as mas-server's auth::status::current.
async function accountStatus(userId) {
  const key = `authz:user:${userId}`;
  try {
    const cached = await redis.get(key);
    if (cached) return cached === "missing" ? null : cached;
  } catch {
    // the database still answers
  }
  const { rows } = await pool.query("select is_active, role from users where id = $1", [userId]);
  const status = rows[0]?.is_active ? rows[0].role : null;
  redis.set(key, status ?? "missing", "EX", CACHE_TTL).catch(() => {});
  return status;
}

const auth = (req, _res, next) => {
  const header = req.get("authorization") || "";
  const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
  if (!token) return next(new HttpError(401, "UNAUTHORIZED", "expected Authorization: Bearer <token>"));
  let claims;
  try {
    claims = jwt.verify(token, JWT_SECRET, { algorithms: ["HS256"] });
  } catch {
    return next(new HttpError(401, "UNAUTHORIZED", "access token is invalid or expired"));
  }
  accountStatus(claims.sub).then(
    (role) => {
      if (!role) return next(new HttpError(401, "UNAUTHORIZED", "account not found or deactivated"));
      req.user = { ...claims, role };
      next();
    },
    next,
  );
};

async function timed(check) {
  const t = Date.now();
  try {
    await check();
    return { status: "up", latencyMs: Date.now() - t };
  } catch (e) {
    return { status: "down", latencyMs: Date.now() - t, error: String(e.message || e) };
  }
}

const app = express();
app.disable("x-powered-by");
app.use(helmet());
app.use(cors());
app.use(express.json({ limit: "1mb" }));

app.get("/api/health/live", (_req, res) => res.json({ success: true, status: "alive" }));
app.get("/api/health", async (_req, res) => {
  const [database, redisCheck] = await Promise.all([
    timed(() => pool.query("select 1")),
    timed(() => redis.ping()),
  ]);
  const ok = database.status === "up" && redisCheck.status === "up";
  res.status(ok ? 200 : 503).json({
    success: ok,
    status: ok ? "ok" : "degraded",
    checks: { database, redis: redisCheck },
    version: "node-peer",
    uptimeSeconds: Math.floor((Date.now() - started) / 1000),
  });
});

const slotColumns = `id, mentor_id as "mentorId", starts_at as "startsAt", ends_at as "endsAt", status, created_at as "createdAt"`;
app.get("/api/slots", auth, async (req, res) => {
  const p = page(req);
  const filter = "status = 'open' and starts_at > now() and ($1::uuid is null or mentor_id = $1)";
  const mentor = req.query.mentorId ?? null;
  const total = await pool.query(`select count(*)::int as n from mentor_slots where ${filter}`, [mentor]);
  const items = await pool.query(
    `select ${slotColumns} from mentor_slots where ${filter} order by starts_at, id limit $2 offset $3`,
    [mentor, p.limit, p.offset],
  );
  res.json({ success: true, data: { items: items.rows, page: p.page, perPage: p.perPage, total: total.rows[0].n } });
});

app.get("/api/meetings", auth, async (req, res) => {
  const p = page(req);
  const total = await pool.query("select count(*)::int as n from meetings where mentor_id = $1 or student_id = $1", [
    req.user.sub,
  ]);
  const items = await pool.query(
    `select id, booking_id as "bookingId", mentor_id as "mentorId", student_id as "studentId",
            starts_at as "startsAt", ends_at as "endsAt", status, created_at as "createdAt"
     from meetings where mentor_id = $1 or student_id = $1 order by starts_at, id limit $2 offset $3`,
    [req.user.sub, p.limit, p.offset],
  );
  res.json({ success: true, data: { items: items.rows, page: p.page, perPage: p.perPage, total: total.rows[0].n } });
});

// Express 5 forwards rejected promises from async handlers here.
app.use((err, _req, res, _next) => {
  const status = err.status || 500;
  res.status(status).json({
    success: false,
    error: { code: err.code || "INTERNAL", message: status === 500 ? "internal error" : err.message },
  });
});

app.listen(Number(PORT), "127.0.0.1", () => console.log(`listening ${PORT}`));
