// The Node side of the pipeline test: the real pg-boss 12.38.0 sending and reading jobs as the
// Yesod API does. Usage: node pipeline_tool.mjs send|get URL SCHEMA < JSON
//   send: [{queue, data}]  -> [id]        (boss.send, one at a time)
//   get:  [{queue, id}]    -> [job]       (boss.getJobById)
const pgbossUrl = new URL('../../scripts/pgboss/node_modules/pg-boss/dist/index.js', import.meta.url);
const { PgBoss } = await import(pgbossUrl.href);

const [command, url, schema] = process.argv.slice(2);
const boss = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false, migrate: false });
boss.on('error', (e) => process.stderr.write(`pg-boss error: ${e.message}\n`));
await boss.start();
let input = '';
for await (const chunk of process.stdin) input += chunk;
const items = JSON.parse(input);
const out = [];
try {
  if (command === 'send') {
    for (const { queue, data } of items) out.push(await boss.send(queue, data));
  } else if (command === 'get') {
    for (const { queue, id } of items) out.push(await boss.getJobById(queue, id));
  } else {
    throw new Error(`unknown command ${command}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
} finally {
  await boss.stop({ graceful: false, wait: true });
}
