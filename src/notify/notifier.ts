/**
 * Turns "a job ended" into the notifications its watch folder asks for (generic webhook and/or Slack) and
 * hands them to the outbox. Called synchronously from the job runner: it only builds and enqueues.
 */
import type { Logger } from 'pino';
import { batchSlackBody, batchWebhookBody, buildEvent, slackBody, webhookBody, type BatchEvent, type EndedJob, type Outcome } from './message.ts';
import { Outbox, type OutboxOptions } from './outbox.ts';

export interface NotifyTargets {
  readonly webhook?: string;
  readonly slack?: string;
}

export interface NotifierOptions extends Omit<OutboxOptions, 'logger'> {
  /** Per watch folder, in config order (a job's folderIndex points here). */
  folders: readonly { readonly notify?: NotifyTargets }[];
  logger: Logger;
  now?: () => number;
}

export interface Notifier {
  onJobEnd(job: EndedJob & { id: string; folderIndex: number }, outcome: Outcome): void;
  /** One notice for a whole batch (a folder drop) to the folder's receivers. */
  onBatch(folderIndex: number, ev: BatchEvent): void;
  close(graceMs: number): Promise<void>;
  readonly outbox: Outbox;
}

/** `slack hooks.slack.com`: enough to tell receivers apart in a log, nothing of the secret path. */
function receiverLabel(kind: string, url: string): string {
  return URL.canParse(url) ? `${kind} ${new URL(url).host}` : kind;
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const { folders, logger, now = Date.now, ...outboxOpts } = opts;
  const outbox = new Outbox({ ...outboxOpts, logger });
  return {
    outbox,
    onJobEnd(job, outcome) {
      const targets = folders[job.folderIndex]?.notify;
      if (!targets?.webhook && !targets?.slack) return;
      const ev = buildEvent(job, outcome, now());
      if (targets.webhook) outbox.push({ url: targets.webhook, body: webhookBody(ev), receiver: receiverLabel('webhook', targets.webhook), job: job.id });
      if (targets.slack) outbox.push({ url: targets.slack, body: slackBody(ev), receiver: receiverLabel('slack', targets.slack), job: job.id });
    },
    onBatch(folderIndex, ev) {
      const targets = folders[folderIndex]?.notify;
      const job = `batch ${ev.subFolder || '.'}`;
      if (targets?.webhook) outbox.push({ url: targets.webhook, body: batchWebhookBody(ev), receiver: receiverLabel('webhook', targets.webhook), job });
      if (targets?.slack) outbox.push({ url: targets.slack, body: batchSlackBody(ev), receiver: receiverLabel('slack', targets.slack), job });
    },
    close: (graceMs) => outbox.close(graceMs),
  };
}

/** Every notification URL of the config, for the log scrubber. */
export function notifySecrets(folders: readonly { readonly notify?: NotifyTargets }[]): string[] {
  return folders.flatMap((f) => [f.notify?.webhook, f.notify?.slack].filter((u): u is string => typeof u === 'string' && u !== ''));
}
