import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CONFIG, findConfigFile, isConfigInvalid, loadConfig, type Config, type LoadConfigOptions } from '../../src/config/load.ts';

const root = mkdtempSync(join(tmpdir(), 'postflow-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh folder with a watch folder, a state dir holding a private refresh token, and a home. */
function fixture() {
  const dir = join(root, `case-${n++}`);
  const watch = join(dir, 'exports');
  const state = join(dir, 'state');
  mkdirSync(watch, { recursive: true });
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, 'refresh-token'), 'rt-123456', { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { HOME: join(dir, 'home') };
  const good = {
    watch: { folders: [{ path: watch, destination: 'FOLDER-1' }] },
    frameio: { clientId: 'client-id' },
    stateDir: state,
  };
  const write = (config: unknown, name = 'postflow.json', mode = 0o600): string => {
    const file = join(dir, name);
    writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2), { mode });
    chmodSync(file, mode);
    return file;
  };
  return { dir, watch, state, env, good, write };
}

/** Loads and returns the problem lines (failing the test when the config loads). */
function problemsOf(opts: LoadConfigOptions): readonly string[] {
  try {
    loadConfig(opts);
  } catch (err) {
    assert.ok(isConfigInvalid(err), `expected PF_ERR_CONFIG_INVALID, got ${String(err)}`);
    assert.equal(err.code, 'PF_ERR_CONFIG_INVALID');
    for (const line of err.problems) assert.ok(!line.includes('\n'), `one line per problem: ${line}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be rejected');
}

function only(problems: readonly string[]): string {
  assert.equal(problems.length, 1, `expected exactly one problem, got:\n${problems.join('\n')}`);
  return problems[0]!;
}

describe('a good configuration', () => {
  test('loads typed, frozen, with defaults and derived paths filled', () => {
    const f = fixture();
    const file = f.write({ ...f.good, stateDir: 'state', watch: { folders: [{ path: `${f.watch}/`, destination: ' FOLDER-1 ' }] } });
    const c: Config = loadConfig({ argvConfigPath: file, env: f.env, cwd: '/' });
    assert.equal(c.stateDir, f.state, 'relative stateDir is resolved against the config file folder');
    assert.equal(c.frameio.refreshTokenFile, join(f.state, 'refresh-token'));
    assert.deepEqual(c.watch.folders[0], {
      path: f.watch,
      destination: 'FOLDER-1',
      include: [],
      exclude: [],
      layout: 'mirror',
      onExisting: 'version',
      upload: 'auto',
      afterUpload: 'leave',
      notify: {},
      bandwidth: 'off',
      quietHours: '',
      priority: 0,
      batchGapSeconds: 60,
    });
    assert.equal(c.watch.stabilitySeconds, 30);
    assert.equal(c.workers, 4);
    assert.equal(c.tunnel.cloudflaredPath, 'cloudflared', 'a bare command stays a PATH lookup');
    assert.equal(c.frameio.scopes, 'openid profile email offline_access additional_info.roles');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.watch.folders[0]) && Object.isFrozen(c.watch.folders));
  });

  test('environment overrides the file, the file overrides defaults', () => {
    const f = fixture();
    const file = f.write({ ...f.good, workers: 2, watch: { ...f.good.watch, pollIntervalSeconds: 9 } });
    const c = loadConfig({
      argvConfigPath: file,
      cwd: f.dir,
      env: { ...f.env, POSTFLOW_WORKERS: '7', POSTFLOW_FRAMEIO_API_URL: 'http://127.0.0.1:9/v4/', POSTFLOW_LOG_PRETTY: 'yes' },
    });
    assert.equal(c.workers, 7);
    assert.equal(c.watch.pollIntervalSeconds, 9);
    assert.equal(c.watch.stabilitySeconds, 30);
    assert.equal(c.frameio.apiUrl, 'http://127.0.0.1:9/v4');
    assert.equal(c.log.pretty, true);
  });

  test('POSTFLOW_CONFIG is used when there is no --config, and --config wins over it', () => {
    const f = fixture();
    const viaEnv = f.write({ ...f.good, workers: 3 }, 'env.json');
    const viaFlag = f.write({ ...f.good, workers: 5 }, 'flag.json');
    assert.equal(loadConfig({ env: { ...f.env, POSTFLOW_CONFIG: viaEnv }, cwd: '/' }).workers, 3);
    assert.equal(loadConfig({ argvConfigPath: viaFlag, env: { ...f.env, POSTFLOW_CONFIG: viaEnv }, cwd: '/' }).workers, 5);
    assert.deepEqual(findConfigFile({ env: { POSTFLOW_CONFIG: 'env.json' }, cwd: f.dir }), { path: viaEnv, via: 'POSTFLOW_CONFIG' });
  });

  test('./config/postflow.json is found from the working folder, else defaults and env only', () => {
    const f = fixture();
    mkdirSync(join(f.dir, 'config'));
    f.write({ ...f.good, workers: 6 }, join('config', 'postflow.json'));
    assert.equal(loadConfig({ env: f.env, cwd: f.dir }).workers, 6);
    const elsewhere = join(f.dir, 'exports');
    assert.equal(findConfigFile({ env: {}, cwd: elsewhere }), null);
    const c = loadConfig({
      env: { ...f.env, POSTFLOW_WATCH_FOLDERS: JSON.stringify(f.good.watch.folders), POSTFLOW_STATE_DIR: f.state, POSTFLOW_FRAMEIO_CLIENT_ID: 'x' },
      cwd: elsewhere,
    });
    assert.equal(c.watch.folders[0]?.path, f.watch);
  });

  test('stateDir defaults to systemd STATE_DIRECTORY, then XDG_STATE_HOME, then ~/.local/state, and is created', () => {
    const f = fixture();
    const base = { POSTFLOW_WATCH_FOLDERS: JSON.stringify(f.good.watch.folders) };
    const noCreds = { checkCredentials: false, cwd: f.dir };
    assert.equal(loadConfig({ ...noCreds, env: { ...base, HOME: f.dir } }).stateDir, join(f.dir, '.local', 'state', 'postflow'));
    assert.equal(loadConfig({ ...noCreds, env: { ...base, HOME: f.dir, XDG_STATE_HOME: join(f.dir, 'xdg') } }).stateDir, join(f.dir, 'xdg', 'postflow'));
    const svc = join(f.dir, 'svc');
    assert.equal(loadConfig({ ...noCreds, env: { ...base, HOME: f.dir, STATE_DIRECTORY: svc } }).stateDir, svc);
  });

  test('client_credentials needs no refresh-token file and gets the server-to-server scopes', () => {
    const f = fixture();
    rmSync(join(f.state, 'refresh-token'));
    const c = loadConfig({ env: { ...f.env, POSTFLOW_CONFIG: f.write({ ...f.good, frameio: { clientId: 'id', auth: 'client_credentials' } }), POSTFLOW_FRAMEIO_CLIENT_SECRET: 's3cr3t-value' }, cwd: '/' });
    assert.equal(c.frameio.scopes, 'openid AdobeID frame.s2s.all');
    assert.equal(c.frameio.clientSecret, 's3cr3t-value');
  });

  test('the credential check can be turned off (demo, config, auth login)', () => {
    const f = fixture();
    rmSync(join(f.state, 'refresh-token'));
    const file = f.write({ ...f.good, frameio: {} });
    assert.doesNotThrow(() => loadConfig({ argvConfigPath: file, env: f.env, cwd: '/', checkCredentials: false }));
    assert.equal(problemsOf({ argvConfigPath: file, env: f.env, cwd: '/' }).length, 2);
  });
});

describe('broken configurations: one line per problem naming key, found and expected', () => {
  test('unknown key, with a suggestion', () => {
    const f = fixture();
    const line = only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { ...f.good.watch, stabilitySecs: 3 } }), env: f.env }));
    assert.match(line, /^watch\.stabilitySecs: unknown key — expected one of folders, stabilitySeconds, pollIntervalSeconds, nativeEventsMaxFiles \(did you mean "stabilitySeconds"\?\)$/);
  });

  test('unknown top-level key', () => {
    const f = fixture();
    assert.match(only(problemsOf({ argvConfigPath: f.write({ ...f.good, colour: 'red' }), env: f.env })), /^colour: unknown key — expected one of watch, frameio, /);
  });

  test('wrong type', () => {
    const f = fixture();
    assert.equal(
      only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { ...f.good.watch, pollIntervalSeconds: 'often' } }), env: f.env })),
      'watch.pollIntervalSeconds: found "often" — expected a number > 0',
    );
  });

  test('workers 0, and a bad value from the environment names the variable', () => {
    const f = fixture();
    assert.equal(only(problemsOf({ argvConfigPath: f.write({ ...f.good, workers: 0 }), env: f.env })), 'workers: found 0 — expected a whole number ≥ 1');
    assert.equal(
      only(problemsOf({ argvConfigPath: f.write(f.good), env: { ...f.env, POSTFLOW_WORKERS: '4x' } })),
      'workers: found "4x" (set by POSTFLOW_WORKERS) — expected a whole number ≥ 1',
    );
  });

  test('a group given a plain value', () => {
    const f = fixture();
    assert.match(only(problemsOf({ argvConfigPath: f.write({ ...f.good, server: 8080 }), env: f.env })), /^server: found 8080 — expected an object with the keys host, port,/);
  });

  test('missing watch folder', () => {
    const f = fixture();
    const gone = join(f.dir, 'Volumes', 'x');
    assert.equal(
      only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { folders: [{ path: gone, destination: 'F' }] } }), env: f.env })),
      `watch.folders[0].path: "${gone}" does not exist — expected a readable folder (is the LucidLink filespace mounted?)`,
    );
  });

  test('watch folder is a file', () => {
    const f = fixture();
    const file = join(f.dir, 'notes.txt');
    writeFileSync(file, 'x');
    assert.match(only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { folders: [{ path: file, destination: 'F' }] } }), env: f.env })), /^watch\.folders\[0\]\.path: ".*notes\.txt" is a file, not a folder — expected a readable folder/);
  });

  test('relative watch folder path', () => {
    const f = fixture();
    assert.equal(
      only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { folders: [{ path: 'exports', destination: 'F' }] } }), env: f.env })),
      'watch.folders[0].path: found "exports" — expected an absolute path such as "/Volumes/studio/exports"',
    );
  });

  test('destination missing, include not an array, unknown folder key, bad policy value: each its own line', () => {
    const f = fixture();
    const problems = problemsOf({
      argvConfigPath: f.write({ ...f.good, watch: { folders: [{ path: f.watch, include: '*.mov', layuot: 'flat', onExisting: 'replace' }] } }),
      env: f.env,
    });
    assert.deepEqual([...problems].sort(), [
      'watch.folders[0].destination: missing — expected a Frame.io folder or project id',
      'watch.folders[0].include: found "*.mov" — expected an array of glob strings such as ["**/*.mov"]',
      'watch.folders[0].layuot: unknown key — expected only path, destination, include, exclude, layout, onExisting, upload, afterUpload, notify, bandwidth, quietHours, priority, batchGapSeconds (did you mean "layout"?)',
      'watch.folders[0].onExisting: found "replace" — expected one of "version", "new", "skip"',
    ]);
  });

  test('bandwidth, quiet hours, priority, batch gap and the small-file share: the part at fault is named', () => {
    const f = fixture();
    const problems = problemsOf({
      argvConfigPath: f.write({
        ...f.good,
        bandwidth: '08:00,20M 19:00,fast',
        workers: 2,
        queue: { smallFileWorkers: 2 },
        watch: { folders: [{ path: f.watch, destination: 'A', bandwidth: '10Q', quietHours: '09:00-26:00', priority: 1.5, batchGapSeconds: -1, notify: { eachFile: 'yes' } }] },
      }),
      env: f.env,
    });
    assert.deepEqual([...problems].sort(), [
      'bandwidth: found "08:00,20M 19:00,fast" (slot "19:00,fast": "fast" is not a rate) — expected a rate in bytes per second such as "50M", "1.5G", "800K" or "off" (K/M/G are 1024-based, as in rclone), or an rclone --bwlimit timetable such as "08:00,20M 19:00,off" or "Mon-08:00,10M Sat-00:00,off"',
      'queue.smallFileWorkers: found 2 with workers 2 — expected fewer than workers (the rest serve files of any size), or 0',
      'watch.folders[0].bandwidth: found "10Q" ("10Q" is not a rate) — expected a rate in bytes per second such as "50M", "1.5G", "800K" or "off" (K/M/G are 1024-based, as in rclone), or an rclone --bwlimit timetable such as "08:00,20M 19:00,off" or "Mon-08:00,10M Sat-00:00,off"',
      'watch.folders[0].batchGapSeconds: found -1 — expected a number ≥ 0',
      'watch.folders[0].notify.eachFile: found "yes" — expected true or false (per-file notices besides the batch notice)',
      'watch.folders[0].priority: found 1.5 — expected a whole number (higher goes first), e.g. 10 or -5',
      'watch.folders[0].quietHours: found "09:00-26:00" ("09:00-26:00": "26:00" is not a time HH:MM) — expected windows "HH:MM-HH:MM" separated by spaces, such as "09:00-18:00" or "09:00-12:00 22:00-06:00", or "" for none',
    ]);
    const ok = loadConfig({
      argvConfigPath: f.write({ ...f.good, bandwidth: 'Mon-08:00,10M Sat-00:00,off', watch: { folders: [{ path: f.watch, destination: 'A', bandwidth: '1.5G', quietHours: '09:00-18:00', priority: 5, batchGapSeconds: 0, notify: { eachFile: true } }] } }),
      env: f.env,
    });
    assert.equal(ok.bandwidth, 'Mon-08:00,10M Sat-00:00,off');
    assert.deepEqual(ok.queue, { smallFileBytes: 2147483648, smallFileWorkers: 1 });
    assert.equal(ok.watch.folders[0]!.priority, 5);
    assert.equal(ok.watch.folders[0]!.notify.eachFile, true);
  });

  test('overlapping watch folders', () => {
    const f = fixture();
    const inner = join(f.watch, 'ep101');
    mkdirSync(inner);
    const line = only(problemsOf({ argvConfigPath: f.write({ ...f.good, watch: { folders: [{ path: f.watch, destination: 'A' }, { path: inner, destination: 'B' }] } }), env: f.env }));
    assert.match(line, /^watch\.folders\[1\]\.path: ".*ep101" overlaps watch\.folders\[0\]\.path/);
  });

  test('bad tunnel mode', () => {
    const f = fixture();
    assert.equal(only(problemsOf({ argvConfigPath: f.write({ ...f.good, tunnel: { mode: 'fast' } }), env: f.env })), 'tunnel.mode: found "fast" — expected one of "quick", "named"');
  });

  test('named tunnel without token and hostname', () => {
    const f = fixture();
    const problems = problemsOf({ argvConfigPath: f.write({ ...f.good, tunnel: { mode: 'named' } }), env: f.env });
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /^tunnel\.token: missing while tunnel\.mode is "named" — expected the named tunnel token/);
    assert.match(problems[1]!, /^tunnel\.hostname: missing while tunnel\.mode is "named" — expected the public hostname/);
  });

  test('no credentials', () => {
    const f = fixture();
    rmSync(join(f.state, 'refresh-token'));
    const problems = problemsOf({ argvConfigPath: f.write({ ...f.good, frameio: {} }), env: f.env });
    assert.equal(problems[0], 'frameio.clientId: missing — expected the Adobe Developer Console client id (or POSTFLOW_FRAMEIO_CLIENT_ID)');
    assert.match(problems[1]!, /^frameio\.refreshTokenFile: ".*refresh-token" does not exist — expected a refresh token saved by `postflow auth login`/);
    const s2s = problemsOf({ argvConfigPath: f.write({ ...f.good, frameio: { clientId: 'id', auth: 'client_credentials' } }), env: f.env });
    assert.equal(only(s2s), 'frameio.clientSecret: missing while frameio.auth is "client_credentials" — expected the Server-to-Server client secret (or POSTFLOW_FRAMEIO_CLIENT_SECRET)');
  });

  test('malformed JSON gives the file, line and column', () => {
    const f = fixture();
    const file = f.write('{\n  "workers": 4,\n  "stateDir" "x"\n}\n');
    assert.equal(only(problemsOf({ argvConfigPath: file, env: f.env })), `${file}: malformed JSON at line 3, column 14 (Expected ':' after property name) — expected a JSON object of settings`);
  });

  test('a missing --config file is named', () => {
    const f = fixture();
    assert.match(only(problemsOf({ argvConfigPath: 'nope.json', cwd: f.dir, env: f.env })), /^--config: ".*nope\.json" does not exist — expected a readable JSON config file$/);
  });

  test('a config file holding a secret must be private (chmod 600)', () => {
    const f = fixture();
    const file = f.write({ ...f.good, frameio: { clientId: 'id', clientSecret: 'do-not-print-me' } }, 'postflow.json', 0o644);
    const line = only(problemsOf({ argvConfigPath: file, env: f.env }));
    assert.equal(line, `frameio.clientSecret: "${file}" holds frameio.clientSecret but is readable by group or others (mode 0644) — expected mode 0600 (chmod 600 ${file}), or the secret in the environment instead`);
    chmodSync(file, 0o600);
    assert.doesNotThrow(() => loadConfig({ argvConfigPath: file, env: f.env }));
  });

  test('a refresh-token file readable by others is refused', () => {
    const f = fixture();
    chmodSync(join(f.state, 'refresh-token'), 0o640);
    assert.match(only(problemsOf({ argvConfigPath: f.write(f.good), env: f.env })), /^frameio\.refreshTokenFile: ".*" is readable by group or others \(mode 0640\) — expected mode 0600 \(chmod 600 .*refresh-token\)$/);
  });

  test('a secret of the wrong type is reported without its value', () => {
    const f = fixture();
    const line = only(problemsOf({ argvConfigPath: f.write({ ...f.good, frameio: { clientId: 'id', clientSecret: 987654321 } }), env: f.env }));
    assert.equal(line, 'frameio.clientSecret: found a number (secret not shown) — expected a string');
    assert.ok(!line.includes('987654321'));
  });

  test('stateDir is a file; admin listener off loopback; admin and server on one port', () => {
    const f = fixture();
    const file = join(f.dir, 'state-file');
    writeFileSync(file, '');
    const problems = problemsOf({
      argvConfigPath: f.write({ ...f.good, stateDir: file, frameio: { clientId: 'id', refreshTokenFile: join(f.state, 'refresh-token') }, admin: { host: '0.0.0.0', port: 8080 }, server: { port: 8080 } }),
      env: f.env,
    });
    assert.deepEqual(problems, [
      'admin.host: found "0.0.0.0" — expected a loopback address ("127.0.0.1", "::1" or "localhost"): the admin listener must stay local',
      `stateDir: "${file}" is a file — expected a folder postflow can create or write to`,
      'admin.port: found 8080, the same port as server.port — expected a different port (or 0): the admin listener must stay separate from the public one',
    ]);
  });

  test('every problem of a file is reported at once, and the error message stays on one line', () => {
    const f = fixture();
    try {
      loadConfig({ argvConfigPath: f.write({ ...f.good, workers: -1, tunnel: { mode: 'x' }, watch: { folders: [{ path: '/nonexistent-postflow', destination: 'F' }] } }), env: f.env });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(isConfigInvalid(err));
      assert.equal(err.problems.length, 3);
      assert.ok(!err.message.includes('\n'));
      assert.match(err.message, /^3 configuration problems \(file .*postflow\.json\): /);
    }
    assert.equal(EXIT_CONFIG, 78);
  });
});

describe('watch folders are required unless the caller says otherwise', () => {
  test('none configured: a problem for the daemon, fine for one-shot upload', () => {
    const f = fixture();
    const file = f.write({ ...f.good, watch: {} });
    assert.match(only(problemsOf({ argvConfigPath: file, env: f.env })), /^watch\.folders: found no folders — expected at least one /);
    assert.deepEqual(loadConfig({ argvConfigPath: file, env: f.env, requireWatchFolders: false }).watch.folders, []);
  });
});
