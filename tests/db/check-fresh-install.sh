#!/usr/bin/env bash
# Runs tests/db/setup.sh's install-and-start path for real, as on a fresh Debian 12 machine,
# without touching the database servers that may run on this one: a bookworm root filesystem
# (debootstrap, into $1, default /tmp/freshdeb) is entered in its own network, mount and PID
# namespaces, where nothing answers on 127.0.0.1:5432/3306, so setup.sh has to install and
# start both servers. The new network namespace has only loopback, so the .deb files are
# fetched beforehand into the root filesystem's apt cache. Then: a second run must only
# check, and psql and mysql must get in over TCP. When the script exits, the namespace and
# every server in it end with it. As root; needs network for the first build only.
set -euo pipefail
cd "$(dirname "$0")/../.."

root=$(realpath -m "${1:-/tmp/freshdeb}")
base=$root.base.tar  # the debootstrapped system with the .debs, built once and reused
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ "$root" != / ] || { echo "refusing to replace /" >&2; exit 1; }
# A leftover bind mount would make rm -rf reach into the host's /dev: refuse instead.
if grep -q " $root/" /proc/mounts; then echo "something is still mounted under $root" >&2; exit 1; fi

if [ ! -f "$base" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  rm -rf "$root"
  debootstrap bookworm "$root" http://deb.debian.org/debian >/dev/null
  cat >"$root/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  chroot "$root" apt-get update -qq
  chroot "$root" apt-get install --download-only -y -qq postgresql postgresql-client mariadb-server mariadb-client >/dev/null
  tar -C "$(dirname "$root")" -cf "$base" "$(basename "$root")"
fi
rm -rf "$root"
tar -C "$(dirname "$root")" -xf "$base"
mkdir -p "$root/opt/setup-check"
cp tests/db/setup.sh "$root/opt/setup-check/setup.sh"

# What runs on the "machine": a fresh install, a second run, logins over TCP, a clean stop.
# shellcheck disable=SC2016 # expanded by the bash inside the root filesystem
checks='
  echo "== fresh machine: setup.sh must install and start both servers"
  bash /opt/setup-check/setup.sh
  echo "== second run: only checks"
  bash /opt/setup-check/setup.sh
  echo "== connecting over TCP"
  psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT version()"
  mysql -h127.0.0.1 -uroot -Nse "SELECT version()"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main stop
  mariadb-admin -uroot shutdown
'
# Inside the namespaces: loopback up, a private /proc, /dev and a fresh /run (as after a
# boot), then PID 1 itself enters the root filesystem. Were PID 1 left outside, ischroot
# would say "chroot" and the packages' maintainer scripts would take their chroot shortcuts
# (systemctl: "Running in chroot, ignoring request") instead of what they do on a real
# machine without systemd.
# shellcheck disable=SC2016 # the inner bash expands these
unshare --net --mount --pid --fork env ROOT="$root" CHECKS="$checks" bash -euo pipefail -c '
  ip link set lo up
  mount -t proc proc "$ROOT/proc"
  mount -t tmpfs -o mode=755 tmpfs "$ROOT/dev"
  for d in null zero full random urandom tty; do touch "$ROOT/dev/$d"; mount --bind "/dev/$d" "$ROOT/dev/$d"; done
  mkdir "$ROOT/dev/shm" "$ROOT/dev/pts"; mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"; ln -s pts/ptmx "$ROOT/dev/ptmx"
  ln -s /proc/self/fd "$ROOT/dev/fd"
  mount -t tmpfs -o mode=755 tmpfs "$ROOT/run"; mkdir -m 1777 "$ROOT/run/lock"
  exec chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin bash -euo pipefail -c "$CHECKS"
'
echo "== fresh install OK"
