/** Notifications from the real daemon: a done file and a failed one reach a local webhook and a "Slack". */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startStack } from '../e2e/harness.ts';
import { startReceiver } from './receiver.ts';

test('the daemon notifies a webhook and Slack when a file is done and when one fails; the URLs stay out of its log', { timeout: 120_000 }, async (t) => {
  const hook = await startReceiver();
  const slack = await startReceiver();
  t.after(() => Promise.all([hook.close(), slack.close()]).then(() => undefined));
  const stack = await startStack({
    config: (c) => {
      c.watch.folders[0].notify = { webhook: `${hook.url}/hook/tok-abcdef123456`, slack: `${slack.url}/services/T1/B1/slacksecret99`, eachFile: true };
      c.watch.stabilitySeconds = 1;
      c.upload = { maxAttempts: 1 };
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  stack.emulator.setFaults({ failImportsNext: 1 });
  await writeFile(join(stack.watchDir, 'bad.mov'), randomBytes(64 * 1024));
  await daemon.waitFor((l) => l.event === 'failed', 60_000, 'bad.mov to fail');
  await writeFile(join(stack.watchDir, 'good.mov'), randomBytes(300 * 1024));
  const done = await daemon.waitFor((l) => l.event === 'done', 60_000, 'good.mov to be done');

  const hooks = await hook.waitFor(2, 20_000);
  const failed = hooks.find((h) => h.body.event === 'failed')!.body;
  const ok = hooks.find((h) => h.body.event === 'done')!.body;
  assert.equal(failed.file.name, 'bad.mov');
  assert.match(failed.reason, /PF_ERR_UPLOAD_REMOTE_FAILED/);
  assert.equal(ok.file.name, 'good.mov');
  assert.equal(ok.file.size, 300 * 1024);
  assert.equal(ok.frameio.url, done.viewUrl);
  assert.ok(typeof ok.durationSeconds === 'number' && ok.durationSeconds >= 0);
  const texts = (await slack.waitFor(2, 20_000)).map((s) => s.body.text as string);
  assert.ok(texts.some((x) => x.startsWith(':white_check_mark: *good.mov*') && x.includes(`<${done.viewUrl as string}|open in Frame.io>`)), texts.join('\n'));
  assert.ok(texts.some((x) => x.startsWith(':x: *bad.mov*')), texts.join('\n'));

  await daemon.stop();
  const log = JSON.stringify(daemon.lines);
  assert.doesNotMatch(log, /tok-abcdef123456|slacksecret99/);
});
