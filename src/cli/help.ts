/** Help texts, rclone-style: what the command does, its flags, and an example a newcomer can paste. */
export const MAIN_HELP = `postflow — watch folders on a LucidLink filespace and import finished exports into Frame.io

Usage: postflow <command> [options]

Commands:
  run                 run the daemon: watch the configured folders and upload every finished file
  upload FILE...      upload the given files once, with the same flow, then exit (0 = all imported)
  config              print the effective configuration (secrets redacted) and check it
  status              what the daemon is doing: queue, imports with progress, failures, tunnel
  jobs                list jobs (--state S, --json)
  retry JOB|--failed  put failed jobs back in the queue
  doctor              check everything the daemon needs (✔/✖ with how to fix), end to end
  auth login|status   log in to Frame.io (Adobe IMS, PKCE) / show who is logged in and until when
  service install     write the systemd unit (Linux) or launchd plist (macOS) for this installation
  help [COMMAND]      show help for a command

Global options:
  -c, --config FILE   configuration file (else $POSTFLOW_CONFIG, else ./config/postflow.json)
      --pretty        human-readable log lines (default when stdout is a terminal)
      --log-level L   trace|debug|info|warn|error (overrides log.level)
  -h, --help          show help

Examples:
  postflow run --config /etc/postflow/postflow.json
  postflow upload ~/Desktop/cut_v3.mov --folder 3f1c…-…
  npm run demo        # try the whole flow locally against the built-in test doubles

Docs: README.md, docs/configuration.md, docs/architecture.md`;

export const COMMAND_HELP: Record<string, string> = {
  status: `Usage: postflow status [--json] [--config FILE]

Shows what postflow is doing: the daemon and tunnel state (with the public URL's age), how many jobs are
queued, every import in flight with its progress, rate and ETA, recent failures with their reasons,
recently finished files with their Frame.io links, and the watch folders. It asks the running daemon
(found through <stateDir>/admin.json); when the daemon is stopped it reads the job store instead.
The same view is the status page: open the admin URL the daemon logs at start ("status page and
admin API on http://127.0.0.1:PORT").

Options:
      --json            the status as JSON (for scripts), the same as GET /api/status
  -c, --config FILE     configuration file (for stateDir)`,
  jobs: `Usage: postflow jobs [--state S] [--limit N] [--json] [--config FILE]

Lists jobs, newest first: id, state, size, attempts, last change, file, and the Frame.io link (done)
or the last error (others). From the running daemon, else from the store of a stopped one.

Options:
  -s, --state S         only jobs in state S: discovered, stable, queued, exposing, importing, done,
                        failed, cancelled
  -n, --limit N         at most N jobs (default 100)
      --json            JSON rows for scripts

Example:
  postflow jobs --state failed`,
  retry: `Usage: postflow retry JOB... | --failed [--json] [--config FILE]

Puts failed jobs back in the queue with their attempts counted from zero. JOB is a job id or a unique
prefix of one (as \`postflow jobs\` shows it). With a running daemon they start at once; on a stopped
daemon's store they start at its next start. Exit 1 when a job could not be re-queued (unknown, or not
failed).

Options:
      --failed          every failed job
      --json            the re-queued jobs as JSON

Example:
  postflow retry --failed`,
  run: `Usage: postflow run [--config FILE] [--upload-existing] [--pretty] [--log-level L]

Runs the daemon in the foreground (systemd/launchd keep it alive). It watches every configured folder,
waits until each new file is stable, and imports it into its Frame.io destination through the tunnel,
logging progress as JSON lines on stdout. SIGTERM/SIGINT stop it gracefully (exit 0).

Options:
  -c, --config FILE     configuration file
      --upload-existing on the very first start, upload the files already present instead of
                        recording them as a baseline
      --pretty          human-readable logs
      --log-level L     override log.level

Exit codes: 0 stopped cleanly, 78 bad configuration, 1 other start-up failure.`,
  upload: `Usage: postflow upload FILE... [--folder ID] [--config FILE]

Uploads the given files once with the daemon's flow (file server + tunnel + Frame.io remote upload),
showing a live progress line per file on a terminal, then exits: 0 when every file was imported,
1 otherwise. Runs beside a running daemon without disturbing it.

Options:
      --folder ID       Frame.io destination folder id (or project id); default: the first watch
                        folder's destination
  -c, --config FILE     configuration file
      --pretty          human-readable logs

Example:
  postflow upload /Volumes/studio/exports/ep101/cut_v3.mov --folder 0b5c4e0e-…`,
  config: `Usage: postflow config [--config FILE]

Loads and validates the configuration exactly as \`postflow run\` would and prints the effective
values as JSON, with secrets shown as "[redacted]". Exit 0 when valid, 78 with one line per problem
otherwise.`,
  doctor: `Usage: postflow doctor [--config FILE]

Checks, one ✔/✖ line each with how to fix it: Node version, cloudflared and its version, every watch
folder readable (and whether it looks like a LucidLink mount), state dir writable, file-server port free,
Frame.io login (GET /v4/me), every destination folder, and end to end: a tunnel is started briefly and a
probe file is fetched back through its public URL (a fresh quick tunnel may need up to a minute to
resolve). Exit 0 only when every check passes. Safe to run beside a running daemon.`,
  auth: `Usage: postflow auth login [--port N] [--config FILE]
       postflow auth status [--config FILE]

login: Adobe IMS authorization-code login with PKCE. Prints the authorize URL; open it in a browser and
approve. The browser is sent back to http://127.0.0.1:PORT/callback (register that redirect URI with the
credential in the Adobe Developer Console); on a machine without a browser, open the URL elsewhere and
paste the address the browser lands on (or its code=… value) here. The refresh token is written to
frameio.refreshTokenFile (mode 0600); a running daemon picks it up by itself.
status: who is logged in (GET /v4/me), until when the access token is valid, when the refresh token
was saved. Exit 0 when the login works, 1 otherwise.

Options:
      --port N          loopback port of the redirect (default 8765; 0 = any free port)
  -c, --config FILE     configuration file

Example:
  postflow auth login --config /etc/postflow/postflow.json`,
  service: `Usage: postflow service install [--user] [--dry-run] [--config FILE]

Writes the service definition for this OS with this installation's paths filled in, then prints the
commands to run next (it starts nothing itself):
  Linux   /etc/systemd/system/postflow.service (--user: ~/.config/systemd/user/postflow.service)
  macOS   /Library/LaunchDaemons/io.postflow.daemon.plist (--user: ~/Library/LaunchAgents/…)
TimeoutStopSec (ExitTimeOut) follows the config's shutdown.graceSeconds.

Options:
      --user              a per-user service instead of a system one
      --dry-run           print the file and the next commands, write nothing
  -c, --config FILE       the config file the service runs with (default /etc/postflow/postflow.json,
                          --user: ~/.config/postflow/postflow.json)
      --service-user NAME the account a system service runs as (default postflow; _postflow on macOS)
      --platform P        linux | darwin (default: this machine's)
      --unit-dir DIR      write into DIR instead of the OS's folder (packaging)

Example:
  sudo postflow service install --config /etc/postflow/postflow.json`,
};
