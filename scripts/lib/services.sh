#!/usr/bin/env bash
# Services the tests and the benchmarks run against, started on loopback and stopped at
# exit. Sourced by scripts/test and scripts/bench (run from the repository root):
#
#   source scripts/lib/services.sh
#   trap stop_services EXIT
#   start_rabbitmq test          # a private RabbitMQ; exports IVRE_TEST_AMQP_URL, …
#   start_ivre_lab               # IVRE 0.9.20 on a private PostgreSQL (scripts/ivre-lab)
#   start_moto                   # moto's S3 server; exports IVRE_TEST_S3_ENDPOINT
#
# - RabbitMQ (Debian's rabbitmq-server, installed when missing): a private node
#   `ivre-<name>-<pid>@localhost` on a free loopback port, its files in
#   target/<name>-rabbitmq (removed and recreated at each start). Exports:
#     IVRE_TEST_AMQP_URL        amqp://guest:guest@127.0.0.1:<port>/%2f
#     IVRE_TEST_RABBITMQCTL, IVRE_TEST_RABBITMQ_NODE, IVRE_TEST_RABBITMQ_HOME,
#     IVRE_TEST_RABBITMQ_EPMD_PORT   (for tests that cut connections with rabbitmqctl)
# - The IVRE lab: scripts/ivre-lab (see there: PostgreSQL, the IVRE venv, `ivre httpd`
#   patched and unpatched; exports IVRE_TEST_WEB_URL, IVRE_TEST_WEB_URL_UNPATCHED,
#   IVRE_TEST_IVRE_CONF, IVRE_TEST_IVRE_BIN).
# - moto (PyPI moto[server], pinned in tests/python/moto-requirements.txt, its own venv
#   target/moto-venv): an S3-compatible server on a free loopback port, any credentials
#   accepted. Exports IVRE_TEST_S3_ENDPOINT (http://127.0.0.1:<port>); its log in
#   target/moto.log.
#
# stop_services stops whatever was started; it is safe to call at any point.

if ! declare -F as_root >/dev/null; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
fi

services_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rabbit_bin=/usr/lib/rabbitmq/bin
rabbit_env=()
rabbit_node=

services_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $1: a name for the node and its directory (`test`, `bench`).
start_rabbitmq() {
    local name=$1 rabbit_dir rabbit_port rabbit_up=false
    if [ ! -x "$rabbit_bin/rabbitmq-server" ]; then
        echo "services: installing rabbitmq-server" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    rabbit_dir="$services_root/target/$name-rabbitmq"
    rabbit_port=$(services_free_port)
    rabbit_node="ivre-$name-$$@localhost"
    rabbit_env=(
        HOME="$rabbit_dir"
        RABBITMQ_NODENAME="$rabbit_node"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$rabbit_port"
        RABBITMQ_DIST_PORT=$((rabbit_port + 20000 > 65000 ? rabbit_port - 20000 : rabbit_port + 20000))
        ERL_EPMD_PORT=4371
        RABBITMQ_MNESIA_BASE="$rabbit_dir/mnesia"
        RABBITMQ_LOG_BASE="$rabbit_dir/log"
        RABBITMQ_ENABLED_PLUGINS_FILE="$rabbit_dir/enabled_plugins"
        RABBITMQ_PID_FILE="$rabbit_dir/pid"
    )
    rm -rf "$rabbit_dir"
    mkdir -p "$rabbit_dir"
    echo '[].' >"$rabbit_dir/enabled_plugins"
    env "${rabbit_env[@]}" "$rabbit_bin/rabbitmq-server" -detached
    # -detached returns at once: wait for the node to answer, then for it to finish booting.
    for _ in $(seq 1 120); do
        if env "${rabbit_env[@]}" "$rabbit_bin/rabbitmqctl" -n "$rabbit_node" -q await_startup --timeout 5 >/dev/null 2>&1; then
            rabbit_up=true
            break
        fi
        sleep 1
    done
    if ! $rabbit_up; then
        echo "services: RabbitMQ did not start; its log:" >&2
        tail -50 "$rabbit_dir"/log/*.log >&2 || true
        exit 1
    fi
    export IVRE_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$rabbit_port/%2f"
    export IVRE_TEST_RABBITMQCTL="$rabbit_bin/rabbitmqctl" IVRE_TEST_RABBITMQ_NODE="$rabbit_node"
    export IVRE_TEST_RABBITMQ_HOME="$rabbit_dir" IVRE_TEST_RABBITMQ_EPMD_PORT=4371
}

stop_rabbitmq() {
    if [ -n "$rabbit_node" ]; then
        env "${rabbit_env[@]}" "$rabbit_bin/rabbitmqctl" -n "$rabbit_node" stop >/dev/null 2>&1 || true
        rabbit_node=
    fi
}

# IVRE 0.9.20 on PostgreSQL, loaded with the lab fixtures (scripts/ivre-lab).
start_ivre_lab() {
    # shellcheck source=../ivre-lab
    source "$services_root/scripts/ivre-lab"
}

moto_pid=

start_moto() {
    local venv="$services_root/target/moto-venv" port up=false
    local requirements="$services_root/tests/python/moto-requirements.txt"
    if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
        rm -rf "$venv"
        mkdir -p "$services_root/target"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    port=$(services_free_port)
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$services_root/target/moto.log" 2>&1 &
    moto_pid=$!
    for _ in $(seq 1 60); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
            up=true
            break
        fi
        if ! kill -0 "$moto_pid" 2>/dev/null; then break; fi
        sleep 0.5
    done
    if ! $up; then
        echo "services: moto did not start; its log:" >&2
        tail -30 "$services_root/target/moto.log" >&2 || true
        exit 1
    fi
    export IVRE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
}

stop_moto() {
    if [ -n "$moto_pid" ]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
        moto_pid=
    fi
}

stop_services() {
    stop_moto
    stop_rabbitmq
    if declare -F stop_ivre_lab >/dev/null; then stop_ivre_lab; fi
}
