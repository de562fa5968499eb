// Type-checked by scripts/test.sh (`tsc --noEmit`): how the API enqueues work for yesod-worker
// and reads the results back with the definitions in ../yesod-worker-jobs.d.ts.
import { PgBoss } from 'pg-boss';
import type {
  FingerprintAudioData,
  ProcessNewRecordData,
  YesodJobData,
  YesodJobError,
  YesodJobOutput,
  YesodQueue,
} from '../yesod-worker-jobs.js';

function send<Q extends YesodQueue>(boss: PgBoss, queue: Q, data: YesodJobData<Q>) {
  return boss.send(queue, data);
}

export async function enqueueNewRecord(boss: PgBoss): Promise<void> {
  const record: ProcessNewRecordData = {
    record_id: 123,
    record_type: 'song',
    metadata: { source: 'upload', storage_path: 'uploads/123.flac' },
    tasks: ['metadata', 'fingerprint'],
  };
  const id = await send(boss, 'process_new_record', record);
  if (id === null) return;
  const job = await boss.getJobById<YesodJobData<'process_new_record'>>('process_new_record', id);
  if (job?.state === 'completed') {
    const out = job.output as YesodJobOutput<'process_new_record'>;
    if ('jobs' in out) console.log(out.jobs.fingerprint);
  } else if (job?.state === 'failed') {
    console.error((job.output as YesodJobError).message);
  }
  const fp: FingerprintAudioData = { audio: 'supabase://audio/123.flac', length_seconds: 0 };
  await send(boss, 'fingerprint_audio', fp);
  // Identify: is a stored record a duplicate, a re-encode or an excerpt of another?
  await send(boss, 'match_fingerprint', { record_id: 123, mode: 'both', min_score: 0.75 });
  const fpJob = await boss.getJobById('fingerprint_audio', id);
  if (fpJob?.state === 'completed') {
    const out = fpJob.output as YesodJobOutput<'fingerprint_audio'>;
    for (const m of out.matches ?? []) console.log(m.record_id, m.verdict, m.offset_seconds);
  }
}
