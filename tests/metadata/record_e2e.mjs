// The Yesod API's side of the process_new_record end-to-end test: the real pg-boss 12.38.0
// (scripts/pgboss). Usage: node record_e2e.mjs COMMAND URL SCHEMA [ARGS…]; JSON on stdout.
//   send QUEUE DATA_JSON [OPTIONS_JSON]   boss.send(): {"id": …}
//   wait SECONDS                          stdin: [{"queue","id"}…]; polls getJobById until each
//                                         job is completed or failed (or time runs out): the jobs
const pgbossUrl = new URL('../../scripts/pgboss/node_modules/pg-boss/dist/index.js', import.meta.url);
const { PgBoss } = await import(pgbossUrl.href);

const [command, url, schema, ...args] = process.argv.slice(2);
const boss = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false, migrate: false });
boss.on('error', (e) => process.stderr.write(`pg-boss error: ${e.message}\n`));
await boss.start();
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  if (command === 'send') {
    const [queue, data, options] = args;
    out({ id: await boss.send(queue, JSON.parse(data), options ? JSON.parse(options) : {}) });
  } else if (command === 'wait') {
    let s = '';
    for await (const chunk of process.stdin) s += chunk;
    const wanted = JSON.parse(s);
    const until = Date.now() + Number(args[0]) * 1000;
    const jobs = new Array(wanted.length).fill(null);
    for (;;) {
      for (let i = 0; i < wanted.length; i++) {
        const j = jobs[i];
        if (j && (j.state === 'completed' || j.state === 'failed')) continue;
        jobs[i] = await boss.getJobById(wanted[i].queue, wanted[i].id);
      }
      const done = jobs.every((j) => j && (j.state === 'completed' || j.state === 'failed'));
      if (done || Date.now() > until) break;
      await sleep(200);
    }
    out(jobs);
  } else {
    throw new Error(`unknown command ${command}`);
  }
} finally {
  await boss.stop({ graceful: false, wait: true });
}
