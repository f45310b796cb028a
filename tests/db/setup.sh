#!/usr/bin/env bash
# Makes sure the databases the end-to-end suite runs on are reachable: PostgreSQL on
# 127.0.0.1:5432 (user postgres, trust auth) and MariaDB on 127.0.0.1:3306 (root, empty
# password). Reuses servers that already answer; otherwise starts the installed ones, and
# installs them from Debian's packages first when missing (as root). No systemd needed.
# Idempotent: a second run only checks.
set -euo pipefail

log() { echo "tests/db/setup.sh: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

wait_for() { # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "$name did not become reachable"; return 1
}

# pg_isready names the postgres user: its default (the login user, often root) makes the server
# log a "role does not exist" FATAL for every probe.
pg_ok() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres -d postgres && psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null; }
my_ok() { mysql -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null; }

# Installs from the package lists already there, so a machine with a filled apt cache needs
# no network. Fresh images ship without lists: fetch them first rather than fail on "Unable
# to locate package". Stale lists name versions the mirror no longer has: refresh and retry.
apt_install() {
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then as_root apt-get update -qq; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || {
    log "apt-get install failed; refreshing the package lists and retrying"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  }
}

# --- PostgreSQL ------------------------------------------------------------------------
if pg_ok 2>/dev/null; then
  log "PostgreSQL answers on 127.0.0.1:5432"
else
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt_install postgresql postgresql-client
  fi
  # shellcheck disable=SC2012 # the entries are version numbers, plain names
  version=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$version/main
  # Trust on loopback for the test user, as on the machines this project is built on.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  # Where an init system runs the packages' scripts (sysvinit), installing started the
  # cluster already: it only has to load the pg_hba.conf lines above. Elsewhere (no init
  # system, as in containers) nothing started it.
  if as_root pg_ctlcluster --skip-systemctl-redirect "$version" main status >/dev/null 2>&1; then
    log "reloading PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  else
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  wait_for PostgreSQL pg_ok
fi

# --- MariaDB ---------------------------------------------------------------------------
if my_ok 2>/dev/null; then
  log "MariaDB answers on 127.0.0.1:3306"
else
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB from Debian's packages"
    apt_install mariadb-server mariadb-client
  fi
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld
  # --background detaches mariadbd from our stderr and Debian's config logs nowhere else, so a
  # server that fails to start would leave no trace: give it a log file, shown on failure.
  my_log=/var/log/mysql/error.log
  as_root mkdir -p /var/log/mysql && as_root chown mysql:adm /var/log/mysql
  log "starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --log-error="$my_log"
  # Debian's root account authenticates by unix socket; allow TCP root with no password,
  # as on the machines this project is built on.
  wait_for "MariaDB socket" as_root mariadb -uroot -e 'SELECT 1' || {
    as_root tail -n 20 "$my_log" >&2 || true; exit 1
  }
  if ! my_ok 2>/dev/null; then
    as_root mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  fi
  wait_for MariaDB my_ok
fi
