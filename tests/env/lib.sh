# Helpers shared by tests/env/up, down and sa-kubeconfig. Sourced, not run.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${HAWSER_TESTENV_STATE:-/tmp/hawser-testenv}"
# A file that marks a directory as ours, so `down` never deletes a directory
# that HAWSER_TESTENV_STATE points at by mistake.
MARKER_FILE=".hawser-testenv"
# Components in start order; they are stopped in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# log prefixes every progress line with the script's name; everything that is
# not an export line goes to stderr so `eval "$(tests/env/up)"` stays clean.
log() { printf 'tests/env/%s: %s\n' "${0##*/}" "$*" >&2; }

# pid_of NAME prints the recorded pid of a component if that process is still
# running *and* is still that component (pids get reused after a reboot or a
# long time), and fails otherwise.
pid_of() {
    local name="$1" file="$STATE/pids/$1.pid" pid stat argv0
    [[ -r "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # A zombie (a child of the up that started it, not yet reaped) is gone.
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat%% *}" != Z ]] || return 1
    argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)" || return 1
    [[ "${argv0##*/}" == "$name" ]] || return 1
    printf '%s\n' "$pid"
}

# stop_components sends TERM to every recorded component, newest first, waits
# up to HAWSER_TESTENV_STOP_TIMEOUT seconds (default 15) for them to exit, and
# KILLs the rest. Pidfiles are removed once their process is gone.
stop_components() {
    local deadline=$((SECONDS + ${HAWSER_TESTENV_STOP_TIMEOUT:-15}))
    local i name pid running
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        name="${COMPONENTS[i]}"
        if pid="$(pid_of "$name")"; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    while :; do
        running=()
        for name in "${COMPONENTS[@]}"; do
            pid_of "$name" >/dev/null && running+=("$name")
        done
        ((${#running[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            for name in "${running[@]}"; do
                if pid="$(pid_of "$name")"; then
                    log "$name (pid $pid) ignored TERM; killing it"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep 0.1
    done
    rm -f "$STATE"/pids/*.pid 2>/dev/null || true
}

# remove_state deletes the state directory, but only if it is one of ours.
remove_state() {
    [[ -e "$STATE" ]] || return 0
    if [[ ! -e "$STATE/$MARKER_FILE" ]]; then
        log "not removing $STATE: it has no $MARKER_FILE, so it was not made by tests/env/up"
        return 1
    fi
    rm -rf -- "$STATE"
}

# write_kubeconfig PATH USER TOKEN [NAMESPACE] writes a token kubeconfig for the
# test apiserver with the cluster CA embedded, so the file stands on its own.
write_kubeconfig() {
    local path="$1" user="$2" token="$3" namespace="${4:-default}" server ca
    server="$(<"$STATE/apiserver-url")"
    ca="$(base64 -w0 <"$STATE/pki/ca.crt")"
    # Tokens are secrets: create the file private before writing them into it.
    (
        umask 077
        cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hawser-testenv
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@hawser-testenv
  context:
    cluster: hawser-testenv
    user: $user
    namespace: $namespace
current-context: $user@hawser-testenv
EOF
    )
}
