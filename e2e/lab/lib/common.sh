# e2e/lab/lib/common.sh — logging, checks that count failures, clock, and wrappers that make
# busybox ash run the real iproute2 (its own `ip` applet would win otherwise).

LAB_RUN=/run/lab
mkdir -p "$LAB_RUN/log" "$LAB_RUN/proc"
: "${LAB_FAILURES:=0}"

# ip / lab_ns — always iproute2, by path. lab_ns NS CMD... runs CMD inside namespace NS.
ip() { /sbin/ip "$@"; }
lab_ns() { _lab_ns=$1; shift; /sbin/ip netns exec "$_lab_ns" "$@"; }

lab_say() { echo "lab: $*"; }
lab_step() { echo "--- $*"; }

# lab_must CMD... — a setup step: on failure the scenario stops, naming the command.
lab_must() {
    "$@" && return 0
    _lab_rc=$?
    echo "lab: setup step failed (exit $_lab_rc): $*"
    exit 1
}

# lab_check DESCRIPTION CMD... — a check: prints ok/FAIL, counts failures, never exits.
lab_check() {
    _lab_desc=$1
    shift
    if "$@"; then
        echo "ok   - $_lab_desc"
    else
        lab_fail "$_lab_desc"
    fi
}

# lab_fail MESSAGE — record a failed check with its message.
lab_fail() {
    echo "FAIL - $*"
    LAB_FAILURES=$((LAB_FAILURES + 1))
    echo "$*" >>"$LAB_RUN/failures"
}

# lab_check_eq DESCRIPTION ACTUAL EXPECTED / lab_check_ge DESCRIPTION ACTUAL MINIMUM
lab_check_eq() {
    if [ "$2" = "$3" ]; then echo "ok   - $1 ($2)"; else lab_fail "$1: expected $3, got $2"; fi
}
lab_check_ge() {
    if [ "$2" -ge "$3" ] 2>/dev/null; then echo "ok   - $1 ($2)"; else lab_fail "$1: expected at least $3, got $2"; fi
}

# lab_finish — end the scenario: exit 1 listing the failed checks, else 0.
lab_finish() {
    if [ "$LAB_FAILURES" -gt 0 ]; then
        echo "lab: $LAB_FAILURES check(s) failed:"
        sed 's/^/  - /' "$LAB_RUN/failures"
        exit 1
    fi
    echo "lab: all checks passed"
    exit 0
}

# lab_skip REASON — the scenario cannot run here (exit 77, reported as SKIP).
lab_skip() { echo "lab: skipped: $*"; exit 77; }

# lab_now_ms — wall clock in milliseconds (busybox date has no %N; adjtimex gives microseconds).
lab_now_ms() {
    adjtimex | awk '/time.tv_sec/ { s = $2 } /time.tv_usec/ { u = $2 } END { printf "%.0f\n", s * 1000 + int(u / 1000) }'
}

# lab_modprobe MODULE... — load modules (dependencies from modules.dep), naming any that fail.
lab_modprobe() {
    for _lab_mod in "$@"; do
        modprobe "$_lab_mod" || { echo "lab: modprobe $_lab_mod failed"; return 1; }
    done
}

# lab_wait SECONDS CMD... — retry CMD every 0.2 s until it succeeds or SECONDS pass.
lab_wait() {
    _lab_tries=$(($1 * 5))
    shift
    while [ "$_lab_tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        _lab_tries=$((_lab_tries - 1))
        sleep 0.2
    done
    return 1
}
