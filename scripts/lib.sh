# Shared helpers, sourced by the other scripts (not run directly).
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export REPO
export PATH="$HOME/.cargo/bin:$PATH"
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
export PG_CONFIG

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Print a stage header.
stage() { printf '\n==> %s\n' "$*"; }

# A TCP port on 127.0.0.1 that is free now. Test servers take these rather than fixed ports: a fixed
# port inside the ephemeral range (32768-60999 here) can be held by any outgoing connection's local
# port at the moment a server binds it, which made test sidecars fail to listen.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Make sure the Debian packages that provide the given commands are installed: `need_commands wrk
# time:/usr/bin/time` installs `wrk` when no `wrk` is on PATH, and `time` when /usr/bin/time is absent.
# Benchmarks call this so that they run on a clean machine, as `make test` does.
need_commands() {
    local want pkg cmd missing=()
    for want in "$@"; do
        pkg=${want%%:*}
        cmd=${want#*:}
        if [ "$cmd" = "$want" ]; then cmd=$pkg; fi
        if [[ $cmd == /* ]]; then [ -x "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
        missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]} (apt)" >&2
    apt_install "${missing[@]}"
}

# Install Debian packages: the package lists refreshed, then the packages without recommends.
apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# CPU ticks (user + system) a process has used so far.
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Waits until the command given (one that prints a count of CPU ticks, such as `ticks_of PID`) grows
# by at most 1 tick in a quarter of a second, for at most 20 s, and prints the milliseconds waited.
# Benchmarks call it between runs: a server that keeps working after its load has ended (PocketBase
# writes its request log for seconds) would otherwise share the machine with the next run.
wait_until_quiet() {
    local a b waited=0
    while [ $waited -lt 20000 ]; do
        a=$("$@"); sleep 0.25; b=$("$@")
        waited=$((waited + 250))
        [ $((b - a)) -le 1 ] && break
    done
    echo "$waited"
}
