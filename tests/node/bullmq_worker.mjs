// Processes COUNT jobs with a Node BullMQ worker, printing one JSON line per job
// ({id, name, data, opts, attemptsMade}), then exits 0. Exits 1 after TIMEOUT_MS.
// env: REDIS_URL, PREFIX, QUEUE, COUNT (default 1), TIMEOUT_MS (default 20000)
import { Worker } from 'bullmq';
import IORedis from 'ioredis';

const count = Number(process.env.COUNT || 1);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
let seen = 0;
let worker;
const done = new Promise((resolve) => {
  worker = new Worker(
    process.env.QUEUE,
    async (job) => {
      console.log(JSON.stringify({ id: job.id, name: job.name, data: job.data, opts: job.opts, attemptsMade: job.attemptsMade }));
      return { processedBy: 'node-bullmq' };
    },
    { connection, prefix: process.env.PREFIX },
  );
  worker.on('completed', () => {
    seen += 1;
    if (seen >= count) resolve();
  });
});
const timeout = setTimeout(() => {
  console.error(`timed out after ${seen} of ${count} jobs`);
  process.exit(1);
}, Number(process.env.TIMEOUT_MS || 20000));
await done;
clearTimeout(timeout);
await worker.close();
await connection.quit();
