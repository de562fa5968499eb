// Job data and outputs of every queue yesod-worker serves (the contract of docs/design.md §2),
// for the Node API's side: `boss.send(queue, data)` and `boss.getJobById(queue, id)`.
// Keep in step with the worker: a renamed field is a breaking change for both.

/** `file:///abs/path` (under the worker's YW_INPUT_ROOTS), `http(s)://…`, or `supabase://bucket/path`. */
export type AudioUri = string;

export type YesodTask = 'metadata' | 'fingerprint' | 'stems';

export interface ProcessNewRecordData {
  /** Required. */
  record_id: number | string;
  record_type?: string;
  /** Free-form; `audio_url` and `storage_path` are read when `audio` is absent. */
  metadata?: { audio_url?: AudioUri; storage_path?: string; [key: string]: unknown };
  audio?: AudioUri;
  /** Default: all three. */
  tasks?: YesodTask[];
}

export type ProcessNewRecordOutput =
  | { record_id: number | string; jobs: { metadata?: string; fingerprint?: string; stems?: string } }
  | { record_id: number | string; skipped: string };

export interface ExtractMetadataData {
  audio: AudioUri;
  record_id?: number | string;
}

export interface ExtractMetadataOutput {
  record_id: number | string | null;
  sha256: string;
  format: {
    container: string;
    codec: string;
    sample_rate: number;
    channels: number;
    bits_per_sample: number | null;
    duration_seconds: number;
    frames: number;
    bitrate_kbps: number | null;
  };
  tags: {
    title: string | null;
    artist: string | null;
    album: string | null;
    album_artist: string | null;
    track: number | null;
    disc: number | null;
    year: number | null;
    genre: string | null;
    isrc: string | null;
    has_cover_art: boolean;
  };
  loudness: {
    integrated_lufs: number | null;
    loudness_range_lu: number | null;
    true_peak_dbtp: number | null;
    sample_peak_dbfs: number | null;
  };
  replaygain: { track_gain_db: number | null; track_peak: number | null };
  /** Artifact URI of the waveform peaks (BBC audiowaveform JSON, version 2). */
  waveform: string;
}

export interface FingerprintAudioData {
  audio: AudioUri;
  record_id?: number | string;
  /** Seconds of audio fingerprinted; default 120, 0 = the whole file (fpcalc's -length). */
  length_seconds?: number;
  /** Include the raw items; default false. */
  raw?: boolean;
  /** Match against the catalogue (default: yes, with these options); false skips matching. */
  match?: false | MatchOptions;
  /** Add the fingerprint to the catalogue with the job's completion; default true. */
  catalogue?: boolean;
}

export interface FingerprintAudioOutput {
  record_id: number | string | null;
  /** Exactly what `fpcalc` prints for the same file and length. */
  fingerprint: string;
  algorithm: 2;
  duration_seconds: number;
  items?: number[];
  /** Present when the worker has a catalogue and `match` was not false; best first. */
  matches?: FingerprintMatch[];
  /** The catalogue key the fingerprint was stored under: record_id as text, else the job id. */
  catalogue_record_id?: string;
}

/** Match options (AcoustID's defaults). */
export interface MatchOptions {
  /** full: AcoustID's window index, ±max_offset_seconds; clip: an excerpt anywhere; both. */
  mode?: 'full' | 'clip' | 'both';
  /** Lowest score reported; default 0.4. */
  min_score?: number;
  /** Full mode's largest shift; default 9.9 (80 items), 0 = unlimited. */
  max_offset_seconds?: number;
  /** Full mode's duration window; default 7, null = no filter. */
  max_duration_diff_seconds?: number | null;
  /** Most matches returned, 1-100; default 10. */
  limit?: number;
}

export interface FingerprintMatch {
  /** The catalogue key of the matching record. */
  record_id: string;
  /** acoustid_compare2's score, 0-1. */
  score: number;
  /** Where the query starts in the record (negative: the record starts inside the query). */
  offset_seconds: number;
  matched_seconds: number;
  bit_error_rate: number;
  /** duplicate >= 0.9, same_recording >= 0.75, similar >= 0.4 (AcoustID's thresholds). */
  verdict: 'duplicate' | 'same_recording' | 'similar';
  /** Which index found it. */
  mode: 'full' | 'clip';
  /** Index hits: shared window terms (full) or votes at the offset (clip). */
  votes: number;
}

/** Exactly one of record_id, items, fingerprint. */
export type MatchFingerprintData = MatchOptions &
  (
    | { record_id: number | string }
    | { items: number[]; duration_seconds?: number }
    | { fingerprint: string; duration_seconds?: number }
  );

export interface MatchFingerprintOutput {
  record_id?: number | string;
  matches: FingerprintMatch[];
  /** The catalogue change-log position the answer reflects. */
  catalogue_version: number;
}

export interface SeparateStemsData {
  audio: AudioUri;
  record_id?: number | string;
  /** Model name; default the worker's configured model, else the built-in separator. */
  model?: string;
  /** Stem files: wav (32-bit float unless bit_depth) or flac (24-bit unless bit_depth 16). */
  format?: 'wav' | 'flac';
  /** Demucs' shift trick: random time shifts averaged, 0 to 20 (default 0, deterministic). */
  shifts?: number;
  /** Seeds the shifts' offsets (a whole number up to 2^53; default 0): a job is reproducible. */
  seed?: number;
  /** Overlap between chunks, 0 to 0.99 (default 0.25). */
  overlap?: number;
  /** Chunk length in seconds, at most the model's window (default the window, 7.8 s for htdemucs). */
  segment?: number;
  /** Per stem, as Demucs: divide by max(1.01 * peak, 1) (default), clamp to ±0.99, or leave. */
  clip_mode?: 'rescale' | 'clamp' | 'none';
  /** Integer samples; not with float32. */
  bit_depth?: 16 | 24;
  /** 32-bit float samples; wav only. */
  float32?: boolean;
  /** Stems at the input's sample rate (default) or the model's (44100 for Demucs). */
  output_rate?: 'input' | 'model';
}

export interface SeparateStemsOutput {
  record_id: number | string | null;
  model: string;
  /** The stems' rate: the input's, or the model's with output_rate 'model'. */
  sample_rate: number;
  duration_seconds: number;
  /** Stem name → artifact URI, e.g. `{ harmonic: 'file://…/harmonic.flac', percussive: … }`. */
  stems: Record<string, string>;
}

/** pg-boss's shape of a failed job's output. */
export interface YesodJobError {
  name: string;
  message: string;
  stack: string;
}

export interface YesodJobs {
  process_new_record: { data: ProcessNewRecordData; output: ProcessNewRecordOutput };
  extract_metadata: { data: ExtractMetadataData; output: ExtractMetadataOutput };
  fingerprint_audio: { data: FingerprintAudioData; output: FingerprintAudioOutput };
  separate_stems: { data: SeparateStemsData; output: SeparateStemsOutput };
  match_fingerprint: { data: MatchFingerprintData; output: MatchFingerprintOutput };
}

export type YesodQueue = keyof YesodJobs;
export type YesodJobData<Q extends YesodQueue> = YesodJobs[Q]['data'];
export type YesodJobOutput<Q extends YesodQueue> = YesodJobs[Q]['output'];
/** The dead-letter queue the worker creates for each queue. */
export type YesodDeadLetterQueue<Q extends YesodQueue = YesodQueue> = `${Q}__dead`;
