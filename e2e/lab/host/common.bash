# e2e/lab/host/common.bash — shared paths and helpers for the lab's host-side scripts
# (setup, build-image, run). Sourced, never executed. Bash only; nothing here touches
# the host's network: everything networked happens inside the VM.

LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"        # e2e/lab
REPO_ROOT="$(cd "$LAB_SRC/../.." && pwd)"
LAB_CACHE="${LAB_CACHE:-$REPO_ROOT/target/lab}"                    # ignored by git (/target)

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# lab_have_pkg NAME — true when the Debian package NAME is installed on the host.
lab_have_pkg() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# lab_apt_update_once — refresh apt's lists at most once per process.
LAB_APT_UPDATED=0
lab_apt_update_once() {
    [[ $LAB_APT_UPDATED == 1 ]] && return 0
    lab_log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null \
        || lab_die "apt-get update failed"
    LAB_APT_UPDATED=1
}

# lab_qemu_binary — the qemu the lab boots: $LAB_QEMU, else the host's, else the private
# copy unpacked by setup under $LAB_CACHE/qemu (see setup for why it may be private).
lab_qemu_binary() {
    if [[ -n ${LAB_QEMU:-} ]]; then
        printf '%s\n' "$LAB_QEMU"
    elif command -v qemu-system-x86_64 >/dev/null 2>&1; then
        command -v qemu-system-x86_64
    elif [[ -x $LAB_CACHE/qemu/bin/qemu-system-x86_64 ]]; then
        printf '%s\n' "$LAB_CACHE/qemu/bin/qemu-system-x86_64"
    else
        return 1
    fi
}

# lab_kernel_dir — the unpacked kernel chosen by setup (recorded in $LAB_CACHE/kernel/current).
lab_kernel_dir() {
    local current="$LAB_CACHE/kernel/current"
    [[ -f $current ]] || lab_die "no kernel unpacked yet: run e2e/lab/setup"
    printf '%s\n' "$LAB_CACHE/kernel/$(cat "$current")"
}
