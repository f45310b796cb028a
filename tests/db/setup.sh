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

pg_ok() { pg_isready -q -h 127.0.0.1 -p 5432 && psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null; }
my_ok() { mysql -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null; }

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || {
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
  version=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$version/main
  # Trust on loopback for the test user, as on the machines this project is built on.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || \
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
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
  log "starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  # Debian's root account authenticates by unix socket; allow TCP root with no password,
  # as on the machines this project is built on.
  wait_for "MariaDB socket" as_root mariadb -uroot -e 'SELECT 1'
  if ! my_ok 2>/dev/null; then
    as_root mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  fi
  wait_for MariaDB my_ok
fi
