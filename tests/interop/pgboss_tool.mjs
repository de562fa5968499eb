// The Node side of the interop tests: the real pg-boss 12.38.0 (scripts/pgboss) doing what the
// Yesod API does. Usage: node pgboss_tool.mjs COMMAND URL SCHEMA QUEUE [ARGS…]; answers JSON on
// stdout, diagnostics on stderr.
//   send-mixed N            send N jobs, mixed priorities, delays and singleton keys
//   get                     getJobById for every id in the JSON array on stdin
//   find                    findJobs(QUEUE): every job of the queue
//   watch ID SECONDS        poll getJobById every 25 ms; the distinct states seen and the last job
//   work N SECONDS          work() with includeMetadata until N jobs arrived: what it received
//   work-groups N SECONDS HOLD_MS LIMITS
//                           work() with groupConcurrency LIMITS (JSON) until N jobs arrived; each
//                           handler logs "claimed GROUP" on stderr and holds its job HOLD_MS;
//                           stops polling after the Nth: [{id, groupId}] once all are completed
//   drain SECONDS           work() at batchSize 100 completing {by: 'node'} until SIGTERM or idle
//   send-timed N GAP_MS     send N jobs one at a time, data {sent_at: epoch ms}
//   latency N GAP_MS        send and work in-process; send-to-start latency of pg-boss itself
//   insert N [records]      insert() N no-op jobs in chunks of 1000, then ANALYZE the table
//                           (records: process_new_record data, {record_id, payload})
//   bench-work N            work() at batchSize 100, localConcurrency 4, burstWhenBatchFull,
//                           pollingIntervalSeconds 0.5 until N jobs ran and none is left queued
//                           or active: {jobs, seconds}
//   supervise               one supervise() pass over QUEUE (monitor, expiry, maintenance), as
//                           pg-boss's own timer runs it: {supervised: QUEUE}
const pgbossUrl = new URL('../../scripts/pgboss/node_modules/pg-boss/dist/index.js', import.meta.url);
const { PgBoss } = await import(pgbossUrl.href);

const [command, url, schema, queue, ...args] = process.argv.slice(2);
const boss = new PgBoss({
  connectionString: url,
  schema,
  supervise: false,
  schedule: false,
  migrate: false,
  useListenNotify: command === 'latency',
});
boss.on('error', (e) => process.stderr.write(`pg-boss error: ${e.message}\n`));
await boss.start();

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readStdin = async () => {
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return JSON.parse(s);
};

try {
  if (command === 'send-mixed') {
    const n = Number(args[0]);
    const sent = [];
    for (let i = 0; i < n; i++) {
      const options = { priority: i % 5 };
      if (i % 7 === 0) options.startAfter = 1 + (i % 2);
      if (i % 3 === 0) options.singletonKey = `k${i}`;
      const data = { i, text: `job ${i}`, nested: { even: i % 2 === 0 } };
      const id = await boss.send(queue, data, options);
      sent.push({ id, data, options });
    }
    out(sent);
  } else if (command === 'get') {
    const ids = await readStdin();
    const jobs = [];
    for (const id of ids) jobs.push(await boss.getJobById(queue, id));
    out(jobs);
  } else if (command === 'find') {
    out(await boss.findJobs(queue));
  } else if (command === 'watch') {
    const [id, seconds] = [args[0], Number(args[1])];
    const states = [];
    let job = null;
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      job = await boss.getJobById(queue, id);
      if (job && states[states.length - 1] !== job.state) states.push(job.state);
      if (job && (job.state === 'failed' || job.state === 'completed')) break;
      await sleep(25);
    }
    out({ states, job });
  } else if (command === 'work') {
    const [n, seconds] = [Number(args[0]), Number(args[1])];
    const got = [];
    await boss.work(queue, { includeMetadata: true, pollingIntervalSeconds: 0.5 }, async ([job]) => {
      got.push(job);
      return { ok: true };
    });
    const until = Date.now() + seconds * 1000;
    while (got.length < n && Date.now() < until) await sleep(50);
    out(got);
  } else if (command === 'work-groups') {
    const [n, seconds, hold, groupConcurrency] =
      [Number(args[0]), Number(args[1]), Number(args[2]), JSON.parse(args[3])];
    const got = [];
    let running = 0;
    await boss.work(queue, { groupConcurrency, pollingIntervalSeconds: 0.5 }, async ([job]) => {
      running++;
      got.push({ id: job.id, groupId: job.groupId ?? null });
      process.stderr.write(`claimed ${job.groupId ?? '-'}\n`);
      // No fetch after the Nth job: offWork stops the loop once this handler returns.
      if (got.length >= n) boss.offWork(queue, { wait: false });
      await sleep(hold);
      running--;
    });
    const until = Date.now() + seconds * 1000;
    while ((got.length < n || running > 0) && Date.now() < until) await sleep(50);
    await boss.offWork(queue);
    out(got);
  } else if (command === 'drain') {
    const seconds = Number(args[0]);
    let count = 0;
    let last = Date.now();
    let stop = false;
    process.on('SIGTERM', () => { stop = true; });
    await boss.work(queue, { batchSize: 100, pollingIntervalSeconds: 0.5, localConcurrency: 2 },
      async (jobs) => {
        count += jobs.length;
        last = Date.now();
        for (const j of jobs) await boss.complete(queue, j.id, { by: 'node' });
      });
    // The caller may SIGTERM us as soon as the queue is drained: say when the handler is in.
    process.stderr.write('drain: working\n');
    const until = Date.now() + seconds * 1000;
    while (!stop && Date.now() < until && (count === 0 || Date.now() - last < 3000)) await sleep(100);
    out({ count });
  } else if (command === 'send-timed') {
    const [n, gap] = [Number(args[0]), Number(args[1])];
    const ids = [];
    for (let i = 0; i < n; i++) {
      await sleep(Math.random() * gap);
      ids.push(await boss.send(queue, { i, sent_at: Date.now() }));
    }
    out(ids);
  } else if (command === 'insert') {
    const n = Number(args[0]);
    const records = args[1] === 'records';  // process_new_record data: a record_id, no audio
    for (let off = 0; off < n; off += 1000) {
      const chunk = [];
      for (let i = off; i < Math.min(n, off + 1000); i++) {
        chunk.push({ data: records ? { record_id: i, payload: 'x'.repeat(64) } : { i, payload: 'x'.repeat(64) } });
      }
      await boss.insert(queue, chunk);
    }
    const db = boss.getDb();
    await db.executeSql(`ANALYZE ${schema}.job_common`);
    out({ inserted: n });
  } else if (command === 'bench-work') {
    const n = Number(args[0]);
    const db = boss.getDb();
    let seen = 0;
    const t0 = performance.now();
    await boss.work(queue, {
      batchSize: 100, localConcurrency: 4, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5,
    }, async (jobs) => { seen += jobs.length; });
    const left = async () => Number((await db.executeSql(
      `SELECT count(*) AS n FROM ${schema}.job WHERE name = $1 AND state < 'completed'`,
      [queue])).rows[0].n);
    while (seen < n || (await left()) > 0) await sleep(seen < n ? 5 : 2);
    out({ jobs: seen, seconds: (performance.now() - t0) / 1000 });
  } else if (command === 'latency') {
    const [n, gap] = [Number(args[0]), Number(args[1])];
    const lat = [];
    let sentAt = 0;
    await boss.work(queue, async () => { lat.push(performance.now() - sentAt); });
    await sleep(1000);
    for (let i = 0; i < n; i++) {
      await sleep(Math.random() * gap);
      const before = lat.length;
      sentAt = performance.now();
      await boss.send(queue, { i });
      while (lat.length === before) await sleep(1);
    }
    out({ latencies_ms: lat });
  } else if (command === 'supervise') {
    // supervise() runs with the background supervisor off too; its errors reject the call.
    await boss.supervise(queue);
    out({ supervised: queue });
  } else {
    throw new Error(`unknown command ${command}`);
  }
} finally {
  await boss.stop({ graceful: false, wait: true, close: true }).catch(() => {});
}
process.exit(0);
