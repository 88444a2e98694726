// Adds one job with Node BullMQ and prints {"id": ...}.
// env: REDIS_URL, PREFIX, QUEUE, JOB_NAME, JOB_DATA (JSON), JOB_OPTS (JSON, optional)
import { Queue } from 'bullmq';
import IORedis from 'ioredis';

const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue(process.env.QUEUE, { connection, prefix: process.env.PREFIX });
const job = await queue.add(
  process.env.JOB_NAME,
  JSON.parse(process.env.JOB_DATA),
  JSON.parse(process.env.JOB_OPTS || '{}'),
);
console.log(JSON.stringify({ id: job.id }));
await queue.close();
await connection.quit();
