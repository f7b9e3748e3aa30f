#!/usr/bin/env bash
# flowpilot-backup: a consistent copy of a FlowPilot host's data, taken while it runs
# (README, "Run a pilot for months"). install.sh puts it in /usr/local/bin; the
# flowpilot-backup.timer runs it every night.
#
#   flowpilot-backup [--keep N] [--no-influx] [--influx-host HOST:PORT] [DIR]
#
# Writes DIR/<UTC time>/ (DIR defaults to /var/backups/flowpilot) with:
#   data/       the data dir: every SQLite file (the durable store with its dead letters, the
#               alerts, their outbox, the gateway's outbox) copied with SQLite's online backup,
#               which gives a consistent snapshot while the services write; the credentials,
#               service logins, API tokens and certificates (written by atomic replacement, so a
#               plain copy is whole). Not the broker's MQTT sessions (broker-sessions/, LevelDB,
#               locked while the broker runs): they hold subscriptions and retained statuses that
#               the meters and the API's live feed renew when they reconnect, no reading.
#   influxdb/   `influxd backup -portable` of the database (FLOWPILOT_INFLUX_DB), through
#               InfluxDB's backup port (127.0.0.1:8088 by default).
#   MANIFEST, SHA256SUMS
# The data dir is copied first, then InfluxDB: a reading still waiting in the copied store is
# either in the InfluxDB copy too or is written by the ingest after a restore (the same point
# written twice is stored once).
#
# A copy is built as <UTC time>.partial and renamed when complete, so a failed run never looks
# like a backup. --keep N then deletes all but the N newest. Run as root, it runs itself again
# as the owner of the data dir (flowpilot): SQLite files it opened as root could be left with
# companions (-wal, -shm) that the services cannot open.
set -euo pipefail

ENV_FILE=/etc/flowpilot/flowpilot.env

fail() {
  printf 'flowpilot-backup: %s\n' "$*" >&2
  exit 1
}

arguments=("$@")
keep=0
influx=yes
influx_host=127.0.0.1:8088
root=/var/backups/flowpilot
while (($# > 0)); do
  case $1 in
    --keep) [[ ${2:-} =~ ^[0-9]+$ ]] || fail "--keep needs a number"; keep=$2; shift 2 ;;
    --no-influx) influx=no; shift ;;
    --influx-host) [[ -n ${2:-} ]] || fail "--influx-host needs HOST:PORT"; influx_host=$2; shift 2 ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) fail "unknown option $1" ;;
    *) root=$1; shift ;;
  esac
done

# The services' settings, unless the environment has them (as under systemd).
setting() {
  local name=$1 fallback=$2 value=${!1:-}
  if [[ -z $value && -r $ENV_FILE ]]; then value=$(sed -n "s/^$name=//p" "$ENV_FILE" | tail -n 1); fi
  printf '%s' "${value:-$fallback}"
}
data_dir=$(setting FLOWPILOT_DATA_DIR /var/lib/flowpilot)
database=$(setting FLOWPILOT_INFLUX_DB flowpilot)

[[ -d $data_dir ]] || fail "no data dir at $data_dir (FLOWPILOT_DATA_DIR)"
owner=$(stat -c %U "$data_dir")
if [[ $(id -u) -eq 0 && $owner != root ]]; then
  exec runuser -u "$owner" -- "$0" "${arguments[@]}"
fi
command -v sqlite3 >/dev/null || fail "sqlite3 is missing: apt-get install sqlite3"
if [[ $influx == yes ]]; then command -v influxd >/dev/null || fail "influxd is missing (InfluxDB on another host? use --no-influx and back it up there)"; fi

umask 077
mkdir -p "$root"
name=$(date -u +%Y%m%dT%H%M%SZ)
[[ ! -e $root/$name ]] || fail "$root/$name exists already: one backup a second at most"
work=$root/$name.partial
rm -rf "$work"
mkdir -p "$work/data"

# Everything but the SQLite files (copied below), the broker's sessions and the local influxd
# of `flowpilot start` (not used by the systemd services), with modes kept.
tar -C "$data_dir" --exclude='./broker-sessions' --exclude='./influxdb' \
  --exclude='*.sqlite' --exclude='*.sqlite-wal' --exclude='*.sqlite-shm' --exclude='*.sqlite-journal' \
  -cf - . | tar -C "$work/data" -xf -
while IFS= read -r -d '' db; do
  relative=${db#"$data_dir"/}
  mkdir -p "$work/data/$(dirname "$relative")"
  sqlite3 "$db" ".timeout 10000" ".backup '$work/data/$relative'"
  check=$(sqlite3 "$work/data/$relative" 'PRAGMA quick_check')
  [[ $check == ok ]] || fail "the copy of $relative fails SQLite's check: $check"
done < <(find "$data_dir" -path "$data_dir/influxdb" -prune -o -name '*.sqlite' -type f -print0)

if [[ $influx == yes ]]; then
  influxd backup -portable -db "$database" -host "$influx_host" "$work/influxdb" >"$work/influxd-backup.log" 2>&1 ||
    fail "influxd backup failed (its output: $work/influxd-backup.log); is InfluxDB's backup port $influx_host on (bind-address in /etc/influxdb/influxdb.conf)?"
  rm -f "$work/influxd-backup.log"
fi

{
  printf 'FlowPilot backup %s\n' "$name"
  printf 'host: %s\n' "$(hostname)"
  printf 'data dir: %s\n' "$data_dir"
  printf 'influxdb: %s\n' "$([[ $influx == yes ]] && printf 'database %s from %s' "$database" "$influx_host" || printf 'not included')"
  release=${FLOWPILOT_COMMIT:-$(sed -n 's/^FLOWPILOT_COMMIT=//p' /etc/flowpilot/release.env 2>/dev/null || true)}
  printf 'release: %s\n' "${release:-unknown}"
} >"$work/MANIFEST"
sums=$(cd "$work" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
printf '%s\n' "$sums" >"$work/SHA256SUMS"
mv "$work" "$root/$name"
printf 'flowpilot-backup: %s\n' "$root/$name"

if ((keep > 0)); then
  find "$root" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9]{8}T[0-9]{6}Z' -printf '%f\n' | sort -r | tail -n +$((keep + 1)) |
    while IFS= read -r old; do rm -rf "${root:?}/$old"; done
fi
