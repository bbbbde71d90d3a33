#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, database "test") and Redis (127.0.0.1:6379) are up,
# starting them when they are not. Fails loudly: tests must never silently skip a service.
set -euo pipefail

PG_USER="${VOXLINE_TEST_PG_USER:-postgres}"
WAIT_SECONDS=30

fail() {
    echo "services: $*" >&2
    exit 1
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

postgres_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready --quiet --host 127.0.0.1 --port 5432
    else
        port_open 5432
    fi
}

redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]
    else
        port_open 6379
    fi
}

wait_for() {
    local name=$1 check=$2 waited=0
    until "$check"; do
        if (( waited >= WAIT_SECONDS )); then
            fail "$name is still not reachable after ${WAIT_SECONDS}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "services: $name is up" >&2
}

if ! postgres_up; then
    command -v pg_ctlcluster >/dev/null 2>&1 \
        || fail "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is missing (Debian: apt-get install postgresql)"
    [[ -d /etc/postgresql ]] && [[ -n "$(ls /etc/postgresql)" ]] \
        || fail "no PostgreSQL cluster under /etc/postgresql"
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start \
        || fail "could not start PostgreSQL"
fi
wait_for PostgreSQL postgres_up

if command -v psql >/dev/null 2>&1; then
    exists=$(psql --host 127.0.0.1 --username "$PG_USER" --dbname postgres --no-psqlrc -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'test'") \
        || fail "cannot connect to PostgreSQL as '$PG_USER' (trust auth on 127.0.0.1 is expected)"
    if [[ "$exists" != "1" ]]; then
        echo "services: creating database 'test'" >&2
        psql --host 127.0.0.1 --username "$PG_USER" --dbname postgres --no-psqlrc -qc 'CREATE DATABASE test' \
            || fail "could not create database 'test'"
    fi
fi

if ! redis_up; then
    command -v redis-server >/dev/null 2>&1 \
        || fail "Redis is not running on 127.0.0.1:6379 and redis-server is missing (Debian: apt-get install redis-server)"
    echo "services: starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log \
        || fail "could not start Redis"
fi
wait_for Redis redis_up
