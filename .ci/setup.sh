#!/usr/bin/env bash
# Prepares this machine for the test suite: installs the real peers the
# tests talk to (ffmpeg), starts MariaDB if it is installed and down, and
# installs and starts Redis if it is missing or down.
# Sourced by `make test`, so the exported variables reach the tests.
# Fails loudly when a required part is missing.
set -euo pipefail

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: need root to install $1 (or install it yourself)" >&2; exit 1; }; }

apt_updated=
apt_install() {
	need_root "$*"
	if [ -z "$apt_updated" ]; then
		apt-get update -qq >/dev/null
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ffmpeg/ffprobe publish and play media in the media tests.
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
	echo "setup: installing ffmpeg" >&2
	apt_install ffmpeg
fi
command -v ffprobe >/dev/null || { echo "setup: ffprobe still missing" >&2; exit 1; }

# nginx runs in front of the service in the reverse-proxy test.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	echo "setup: installing nginx" >&2
	apt_install nginx
fi

# Node.js and npm build the pages' bundle; Chromium runs the browser test.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
	echo "setup: installing nodejs and npm" >&2
	apt_install nodejs npm
fi
if [ ! -x "${MOFANG_CHROMIUM:-/usr/bin/chromium}" ]; then
	echo "setup: installing chromium" >&2
	apt_install chromium
fi
[ -x "${MOFANG_CHROMIUM:-/usr/bin/chromium}" ] || { echo "setup: chromium still missing" >&2; exit 1; }

# MariaDB: the store and API tests run against a real server too.
export MOFANG_TEST_MYSQL_DSN="${MOFANG_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/test}"
mysql_up() { mariadb -h127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1 || mysql -h127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; }
if ! mysql_up; then
	if [ -x /usr/sbin/mariadbd ]; then
		echo "setup: starting MariaDB" >&2
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		for _ in $(seq 60); do mysql_up && break; sleep 0.5; done
	elif [ "${CI:-}" = true ]; then
		echo "setup: installing MariaDB" >&2
		apt_install mariadb-server
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		for _ in $(seq 60); do mysql_up && break; sleep 0.5; done
	fi
fi
if mysql_up; then
	mariadb -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' 2>/dev/null || true
elif [ "${CI:-}" = true ]; then
	echo "setup: MariaDB is required in CI and is not reachable at 127.0.0.1:3306" >&2
	exit 1
else
	echo "setup: MariaDB not reachable: the MySQL runs of the tests will be skipped" >&2
fi

# Redis: the cluster tests run against a real server (each test under its
# own key prefix, so a shared server is fine).
export MOFANG_TEST_REDIS_URL="${MOFANG_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
redis_up() {
	if command -v redis-cli >/dev/null; then
		[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
	else
		(exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && IFS= read -r -t 2 reply <&3 && [ "${reply%$'\r'}" = +PONG ]) 2>/dev/null
	fi
}
if ! redis_up; then
	if ! command -v redis-server >/dev/null; then
		echo "setup: installing redis-server" >&2
		apt_install redis-server
	fi
	echo "setup: starting Redis" >&2
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
	for _ in $(seq 40); do redis_up && break; sleep 0.25; done
fi
if ! redis_up; then
	if [ "${CI:-}" = true ]; then
		echo "setup: Redis is required in CI and is not reachable at 127.0.0.1:6379" >&2
		exit 1
	fi
	echo "setup: Redis not reachable: the cluster tests will be skipped" >&2
fi

# In CI the MySQL runs must not be skipped.
if [ "${CI:-}" = true ]; then
	export MOFANG_REQUIRE_MYSQL=1
fi
