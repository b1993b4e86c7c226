/** Help texts, rclone-style: what the command does, its flags, and an example a newcomer can paste. */
export const MAIN_HELP = `postflow — watch folders on a LucidLink filespace and import finished exports into Frame.io

Usage: postflow <command> [options]

Commands:
  run                 run the daemon: watch the configured folders and upload every finished file
  upload FILE...      upload the given files once, with the same flow, then exit (0 = all imported)
  config              print the effective configuration (secrets redacted) and check it
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
