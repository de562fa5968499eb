// Prints every job of one record, as the Node API would see them: queue, state and output.
//   node scripts/pgboss/show-record.mjs RECORD_ID            (DATABASE_URL, PGBOSS_SCHEMA)
// Reads with pg-boss's own findJobs, so what it shows is what the API reads back.
const { PgBoss } = await import(new URL('./node_modules/pg-boss/dist/index.js', import.meta.url).href);

const [recordId] = process.argv.slice(2);
if (!recordId || !process.env.DATABASE_URL) {
  process.stderr.write('usage: DATABASE_URL=… node scripts/pgboss/show-record.mjs RECORD_ID\n');
  process.exit(2);
}
const boss = new PgBoss({
  connectionString: process.env.DATABASE_URL,
  schema: process.env.PGBOSS_SCHEMA || 'pgboss',
  supervise: false,
  schedule: false,
  migrate: false,
});
boss.on('error', (e) => process.stderr.write(`pg-boss error: ${e.message}\n`));
await boss.start();
try {
  for (const queue of ['process_new_record', 'extract_metadata', 'fingerprint_audio', 'separate_stems']) {
    const jobs = await boss.findJobs(queue, { data: { record_id: recordId } });
    for (const job of jobs) {
      process.stdout.write(`${queue}  ${job.state}  ${job.id}\n`);
      if (job.output) process.stdout.write(`  ${JSON.stringify(job.output)}\n`);
    }
  }
} finally {
  await boss.stop({ graceful: false, wait: true });
}
