#!/usr/bin/env bash
# Installs FlowPilot as systemd services on this host (README, "Run a pilot for months"):
#   - the `flowpilot` system user (a fixed one: the data dir keeps one owner for the whole pilot);
#   - /var/lib/flowpilot (0700) for the data, /var/lib/flowpilot/gateway (0700) for the gateway's
#     outbox, both owned by it;
#   - /etc/flowpilot (0750, root:flowpilot) with flowpilot.env and pilot.yaml (0640) when absent:
#     the services read their settings and cannot change them;
#   - /var/backups/flowpilot (0700, flowpilot) for the nightly backups;
#   - the units, flowpilot.target and the backup's timer in /etc/systemd/system, the journal's
#     limits in /etc/systemd/journald.conf.d/flowpilot.conf (when absent), and in /usr/local/bin
#     `flowpilot`, the operator's command, and `flowpilot-backup`;
#   - /etc/flowpilot/release.env with the commit of this release (for the PDF report);
#   - then `systemctl daemon-reload`. It starts nothing: `systemctl enable --now flowpilot.target` does.
#
# Run it as root from the install dir, after `npm ci --omit=dev` there:
#   sudo /opt/flowpilot/deploy/systemd/install.sh
# and again after every upgrade: it replaces the units, the command and release.env, and never
# touches the data dir's contents or a settings file that exists.
#
# DESTDIR=DIR installs the same files under DIR only, and skips what needs root on a live
# system (the user, owners, systemctl): for building a package, and for test/deploy-files.test.ts.
set -euo pipefail

INSTALL_DIR=/opt/flowpilot
SERVICE_USER=flowpilot
DATA_DIR=/var/lib/flowpilot
CONFIG_DIR=/etc/flowpilot
UNIT_DIR=/etc/systemd/system
BACKUP_DIR=/var/backups/flowpilot
UNITS=(flowpilot.target flowpilot-broker.service flowpilot-api.service flowpilot-gateway.service flowpilot-backup.service flowpilot-backup.timer)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
dest=${DESTDIR:-}
dest=${dest%/}

say() { printf 'install.sh: %s\n' "$*"; }
fail() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
live() { [[ -z $dest ]]; }

# make_dir MODE OWNER GROUP PATH: created, or an existing one brought to MODE (and OWNER).
make_dir() {
  install -d "$dest$4"
  chmod "$1" "$dest$4"
  if live; then chown "$2:$3" "$dest$4"; fi
}

# put MODE OWNER GROUP SOURCE TARGET: replaced on every install.
put() {
  install -m "$1" "$4" "$dest$5"
  if live; then chown "$2:$3" "$dest$5"; fi
}

# put_once MODE OWNER GROUP SOURCE TARGET: written only when absent, so a site's edits stay.
put_once() {
  if [[ -e $dest$5 ]]; then
    say "kept $5 as it is"
    return 1
  fi
  put "$@"
  say "wrote $5"
}

if live; then
  [[ $(id -u) -eq 0 ]] || fail "run it as root: sudo $0"
  [[ $source_dir == "$INSTALL_DIR" ]] ||
    fail "the units run FlowPilot from $INSTALL_DIR, and this copy is in $source_dir: put it there (git clone <repository> $INSTALL_DIR), then run $INSTALL_DIR/deploy/systemd/install.sh"
  [[ -x /usr/bin/node ]] || fail "/usr/bin/node is missing: install Node.js 20.19 or newer (README, \"Run a pilot for months\")"
  /usr/bin/node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    fail "Node.js $(/usr/bin/node --version) is too old: install Node.js 20.19 or newer"
  [[ -d $INSTALL_DIR/node_modules ]] || fail "$INSTALL_DIR/node_modules is missing: run (cd $INSTALL_DIR && npm ci --omit=dev) first"
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin --comment 'FlowPilot services' "$SERVICE_USER"
    say "created the system user $SERVICE_USER"
  fi
fi

make_dir 0700 "$SERVICE_USER" "$SERVICE_USER" "$DATA_DIR"
make_dir 0700 "$SERVICE_USER" "$SERVICE_USER" "$DATA_DIR/gateway"
make_dir 0700 "$SERVICE_USER" "$SERVICE_USER" "$BACKUP_DIR"
make_dir 0750 root "$SERVICE_USER" "$CONFIG_DIR"
put_once 0640 root "$SERVICE_USER" "$here/flowpilot.env" "$CONFIG_DIR/flowpilot.env" || true
put_once 0640 root "$SERVICE_USER" "$source_dir/examples/pilot.yaml" "$CONFIG_DIR/pilot.yaml" || true

# The commit the PDF report names (FLOWPILOT_COMMIT): the services cannot ask git themselves,
# since the checkout belongs to root. Rewritten every time, so an upgrade never keeps the old one.
commit=${FLOWPILOT_COMMIT:-}
if [[ -z $commit && -e $source_dir/.git ]] && command -v git >/dev/null; then
  commit=$(git -c safe.directory="$source_dir" -C "$source_dir" rev-parse HEAD 2>/dev/null || true)
fi
release=$(mktemp)
trap 'rm -f "$release"' EXIT
if [[ -n $commit ]]; then
  printf '# Written by deploy/systemd/install.sh: the release installed in %s.\nFLOWPILOT_COMMIT=%s\n' "$INSTALL_DIR" "$commit" >"$release"
else
  printf '# Written by deploy/systemd/install.sh: no commit known (no .git; set FLOWPILOT_COMMIT when running it).\n' >"$release"
fi
put 0644 root root "$release" "$CONFIG_DIR/release.env"

install -d "$dest$UNIT_DIR"
for unit in "${UNITS[@]}"; do
  put 0644 root root "$here/$unit" "$UNIT_DIR/$unit"
done
install -d "$dest/usr/local/bin"
put 0755 root root "$here/flowpilot" /usr/local/bin/flowpilot
put 0755 root root "$here/backup.sh" /usr/local/bin/flowpilot-backup
install -d "$dest/etc/systemd/journald.conf.d"
journal_new=no
if put_once 0644 root root "$here/journald-flowpilot.conf" /etc/systemd/journald.conf.d/flowpilot.conf; then journal_new=yes; fi

if live; then
  runuser -u "$SERVICE_USER" -- test -r "$INSTALL_DIR/apps/flowpilot/bin/flowpilot.js" ||
    fail "the $SERVICE_USER user cannot read $INSTALL_DIR: make it readable (chmod -R a+rX $INSTALL_DIR)"
  command -v influxd >/dev/null || say "influxd is missing: apt-get install influxdb (or set FLOWPILOT_INFLUX_URL to another InfluxDB)"
  if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    if [[ $journal_new == yes ]]; then systemctl restart systemd-journald; fi
  else
    say "systemd is not running here: run systemctl daemon-reload once it is"
  fi
  say "installed. Next: edit $CONFIG_DIR/flowpilot.env and $CONFIG_DIR/pilot.yaml, then: systemctl enable --now flowpilot.target flowpilot-backup.timer"
else
  say "installed under $dest (no user, owners or systemctl with DESTDIR)"
fi
