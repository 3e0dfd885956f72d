# e2e/lab/lib/process.sh — long-running processes inside namespaces, by name, so a scenario can
# kill and restart them (a server, later a project agent). Logs go to /run/lab/log/NS.NAME.log.

# lab_spawn NS NAME CMD... — start CMD in namespace NS in the background.
lab_spawn() {
    local ns=$1 name=$2 quoted="" arg
    shift 2
    for arg in "$@"; do
        quoted="$quoted '$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
    done
    echo "$quoted" >"$LAB_RUN/proc/$ns.$name.cmd"
    /sbin/ip netns exec "$ns" "$@" >>"$LAB_RUN/log/$ns.$name.log" 2>&1 &
    echo $! >"$LAB_RUN/proc/$ns.$name.pid"
}

# lab_log_tail NS NAME [LINES] — the last lines a spawned process wrote, for error messages.
lab_log_tail() {
    echo "lab: last output of $2 in $1:"
    tail -n "${3:-5}" "$LAB_RUN/log/$1.$2.log" 2>/dev/null | sed 's/^/    /'
}

# lab_pid NS NAME — pid of a spawned process (empty if unknown).
lab_pid() { cat "$LAB_RUN/proc/$1.$2.pid" 2>/dev/null; }

# lab_running NS NAME — true while the process lives.
lab_running() {
    local pid
    pid=$(lab_pid "$1" "$2")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# lab_kill NS NAME [SIGNAL] — stop a spawned process and wait until it is gone (5 s at most).
lab_kill() {
    local pid
    pid=$(lab_pid "$1" "$2")
    [ -n "$pid" ] || { echo "lab: no process $2 in $1"; return 1; }
    kill "-${3:-TERM}" "$pid" 2>/dev/null
    if ! lab_wait 5 sh -c "! kill -0 $pid"; then
        kill -KILL "$pid" 2>/dev/null
        lab_wait 2 sh -c "! kill -0 $pid" || { echo "lab: $2 ($pid) in $1 will not die"; return 1; }
    fi
    wait "$pid" 2>/dev/null
    rm -f "$LAB_RUN/proc/$1.$2.pid"
}

# lab_restart NS NAME — kill (if running) and start again with the same command.
lab_restart() {
    local cmd
    cmd=$(cat "$LAB_RUN/proc/$1.$2.cmd" 2>/dev/null) || { echo "lab: never spawned: $2 in $1"; return 1; }
    lab_running "$1" "$2" && lab_kill "$1" "$2"
    eval "lab_spawn \"\$1\" \"\$2\" $cmd"
}

# lab_wait_listen NS PROTO PORT [SECONDS] — wait until something listens on PORT (tcp|udp).
lab_wait_listen() {
    local flag=-ltn
    [ "$2" = udp ] && flag=-lun
    lab_wait "${4:-10}" sh -c "/sbin/ip netns exec '$1' netstat $flag | grep -q ':$3 '" ||
        { echo "lab: nothing listens on $2 port $3 in $1"; return 1; }
}
