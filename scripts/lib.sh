# Shared helpers for scripts/bootstrap.sh and scripts/ensure-services.sh (sourced, not executed).
# shellcheck shell=bash

# Root runs apt directly; anyone else goes through sudo (non-interactively, so CI never hangs on a prompt).
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=(__no_sudo__)
fi

say() { printf '%-10s %s\n' "$1" "$2"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

_APT_UPDATED=0
# apt_install PKG...: install the packages that dpkg does not already know as installed.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 ||
        die "missing system packages (${missing[*]}) and no apt-get: install them with your package manager"
    [ "${SUDO[0]:-}" = "__no_sudo__" ] &&
        die "missing system packages (${missing[*]}): run as root, or install sudo, or: apt-get install ${missing[*]}"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q)
    if [ "$_APT_UPDATED" -eq 0 ]; then
        "${SUDO[@]}" "${apt[@]}" update >/dev/null 2>&1 ||
            say apt "apt-get update failed (offline?): trying with the package lists already here"
        _APT_UPDATED=1
    fi
    say apt "installing ${missing[*]}"
    "${SUDO[@]}" "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
    # shellcheck disable=SC2016 # $0/$1 expand in the child shell, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# wait_port HOST PORT SECONDS: wait until the port answers; false on timeout.
wait_port() {
    local deadline=$((SECONDS + $3))
    until port_open "$1" "$2"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

# dotenv_get KEY FILE: the value of KEY=... in a dotenv file (last one wins), empty if absent.
dotenv_get() {
    [ -f "$2" ] || return 0
    sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1=[\"']?([^\"']*)[\"']?[[:space:]]*$/\\2/p" "$2" | tail -n 1
}
