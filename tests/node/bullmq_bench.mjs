// No-op job throughput of a Node BullMQ worker, for scripts/bench-queues.
// env: REDIS_URL, BENCH_PREFIX, BENCH_JOBS (default 5000), BENCH_CONCURRENCY (default 10)
// BENCH_TIMEOUT_SECS (default 300: fails instead of hanging when jobs are lost).
// Prints {"impl":"node","jobs":N,"concurrency":C,"seconds":S,"jobsPerSec":R,"redisCpuMsAdd":A,
// "redisCpuMsWork":W}: Redis's own CPU (`INFO cpu`, user + sys) while adding and while working.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const jobs = Number(process.env.BENCH_JOBS || 5000);
const concurrency = Number(process.env.BENCH_CONCURRENCY || 10);
const prefix = process.env.BENCH_PREFIX;
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const timeoutMs = 1000 * Number(process.env.BENCH_TIMEOUT_SECS || 300);
const probe = new IORedis(process.env.REDIS_URL);
const redisCpu = async () =>
  (await probe.info('cpu'))
    .split('\n')
    .filter((l) => /^used_cpu_(user|sys):/.test(l))
    .reduce((a, l) => a + Number(l.split(':')[1]), 0);
const cpu0 = await redisCpu();
const queue = new Queue('emailQueue', { connection, prefix });
const opts = { attempts: 1, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };
for (let i = 0; i < jobs; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(jobs, i + 1000); j++) batch.push({ name: 'noop', data: { i: j }, opts });
  await queue.addBulk(batch);
}
const cpu1 = await redisCpu();
let done = 0;
let worker;
const workerConnection = connection.duplicate();
const started = process.hrtime.bigint();
await new Promise((resolve, reject) => {
  setTimeout(() => reject(new Error(`only ${done} of ${jobs} jobs completed in ${timeoutMs} ms`)), timeoutMs).unref();
  worker = new Worker('emailQueue', async () => null, { connection: workerConnection, prefix, concurrency });
  worker.on('completed', () => {
    done += 1;
    if (done === jobs) resolve();
  });
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu2 = await redisCpu();
await worker.close();
await queue.close();
await workerConnection.quit();
await connection.quit();
await probe.quit();
console.log(JSON.stringify({
  impl: 'node', jobs, concurrency, seconds, jobsPerSec: jobs / seconds,
  redisCpuMsAdd: (cpu1 - cpu0) * 1000, redisCpuMsWork: (cpu2 - cpu1) * 1000,
}));
