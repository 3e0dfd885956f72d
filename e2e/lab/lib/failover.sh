# e2e/lab/lib/failover.sh — two directors with failover (director = director-1, the preferred
# one, and director2 = director-2), two real servers, a client sending a request every 20 ms,
# and a TCP stream through the VIP; for the ha-* scenarios. LAB_HA_FAMILY=6 (set before
# lab_ha_setup) makes all of it IPv6: VIP fd00:100::100, the nodes and real servers at their IPv6
# addresses only (so the heartbeats go over IPv6 too), the VIP held on the directors' eth0.

LAB_HA_VIP=10.100.0.100

# lab_uptime_ms — milliseconds since boot (10 ms steps), read without forking a process.
lab_uptime_ms() {
    local up
    read -r up _ </proc/uptime
    echo "${up%.*}${up#*.}0"
}

# lab_ha_setup [SED] — topology (client, director, director2, rs1, rs2), web servers on :80
# and stream servers on :9000 in rs1 and rs2, the failover key, manifests/ha.yaml (edited by the
# sed expression SED, e.g. to turn preemption on) and ha-nodes.yaml, agents on all four nodes
# (director's first); waits until every agent synced and director holds the VIP. Agents run with
# LAB_AGENT_ARGS="--failover-key-file ... $LAB_HA_ARGS".
lab_ha_setup() {
    local ns
    lab_topology 2 2
    for ns in rs1 rs2; do
        lab_must lab_http_server "$ns" 80
        lab_ha_stream_server "$ns"
    done
    lab_ha_key
    LAB_AGENT_ARGS="--failover-key-file $LAB_HA_KEY ${LAB_HA_ARGS:-}"
    export LAB_AGENT_ARGS
    LAB_HA_DIR=$LAB_RUN/manifests
    mkdir -p "$LAB_HA_DIR"
    local family='s/^//'
    if [ "${LAB_HA_FAMILY:-4}" = 6 ]; then
        family=$LAB_V6
        LAB_HA_VIP=$LAB_VIP6
    fi
    sed -e "$family" /lab/manifests/ha-nodes.yaml >"$LAB_RUN/ha-nodes.yaml"
    lab_must lab_manifest_put "$LAB_HA_DIR" nodes.yaml "$LAB_RUN/ha-nodes.yaml"
    lab_must lab_manifest_put "$LAB_HA_DIR" pool.yaml /lab/examples/pool.yaml
    sed -e "${1:-s/^//}" -e "$family" /lab/manifests/ha.yaml >"$LAB_RUN/ha.yaml"
    lab_must lab_manifest_put "$LAB_HA_DIR" ha.yaml "$LAB_RUN/ha.yaml"
    # director first: a director that starts alone takes the VIP after listening one dead
    # interval, and without preemption keeps it when the preferred one shows up later.
    for ns in director rs1 rs2; do lab_agent_start "$ns" "$LAB_HA_DIR"; done
    lab_must lab_agent_wait_synced director 2 0
    lab_must lab_wait 15 lab_ha_holds director
    lab_agent_start director2 "$LAB_HA_DIR"
    lab_must lab_agent_wait_synced director2 2 0
    lab_must lab_agent_wait_all 0 1 rs1 rs2
    lab_check "director (started first) holds the VIP, director2 does not" lab_wait 15 lab_ha_only director
}

# lab_ha_key — a random failover key shared by the directors, in the file $LAB_HA_KEY.
lab_ha_key() {
    LAB_HA_KEY=$LAB_RUN/failover.key
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$LAB_HA_KEY"
}

# lab_ha_failover_under_load NAME — a request every 20 ms (loop NAME) for 3 s, then director is
# cut off; checks that director2 takes the VIP, that answers come back and that no request
# started after the gap fails. Sets LAB_HA_CUT, LAB_HA_GAP (and the rest of lab_ha_gap's).
lab_ha_failover_under_load() {
    lab_ha_client_start "$1"
    sleep 3
    lab_ha_cut director
    lab_check "director2 holds the VIP" lab_wait 10 lab_ha_holds director2
    sleep 3
    lab_ha_client_stop "$1"
    lab_ha_gap "$1" "$LAB_HA_CUT"
    lab_check "answers after the takeover" [ "$LAB_HA_GAP" != never ]
    lab_check_eq "requests started after the gap that failed" "$LAB_HA_LATE_FAILURES" 0
}

# lab_ha_holds NS — NS has the VIP: on lvs0, an IPv6 one on eth0 (where it answers NDP).
lab_ha_holds() {
    case $LAB_HA_VIP in
    *:*) /sbin/ip -n "$1" -6 addr show dev eth0 2>/dev/null | grep -q "inet6 $LAB_HA_VIP/" ;;
    *) /sbin/ip -n "$1" -4 addr show dev lvs0 2>/dev/null | grep -q "inet $LAB_HA_VIP/" ;;
    esac
}

# lab_ha_probe NS — who answers ARP (IPv6: NDP) for the VIP, asked from NS.
lab_ha_probe() { lab_neigh_probe "$1" "$LAB_HA_VIP"; }

# lab_ha_not_holds NS — NS does not have the VIP.
lab_ha_not_holds() { ! lab_ha_holds "$1"; }

# lab_ha_only NS — NS holds the VIP and the other director does not.
lab_ha_only() {
    local other=director2
    [ "$1" = director2 ] && other=director
    lab_ha_holds "$1" && ! lab_ha_holds "$other"
}

# lab_ha_stream_server NS — in NS, on :9000, one connection at a time: "tick N" every 0.1 s.
lab_ha_stream_server() {
    # shellcheck disable=SC2016 # the loop runs in the spawned shell
    lab_spawn "$1" stream sh -c 'while :; do nc -l -p 9000 -e sh -c "i=0; while :; do i=\$((i + 1)); echo tick \$i; sleep 0.1; done"; done'
    lab_must lab_wait_listen "$1" tcp 9000
}

# lab_ha_stream_start — the client opens a TCP connection to VIP:9000; received lines go to
# $LAB_RUN/stream.txt.
lab_ha_stream_start() {
    : >"$LAB_RUN/stream.txt"
    # stdin is a FIFO held open by a sleeping writer: a two-way connection, not a half-closed
    # one; exec makes the spawned process nc itself (lab_running tells whether it still runs)
    rm -f "$LAB_RUN/stream.in"
    mkfifo "$LAB_RUN/stream.in"
    lab_spawn client stream-input sh -c "exec sleep 3600 >'$LAB_RUN/stream.in'"
    lab_spawn client stream sh -c "exec nc $LAB_HA_VIP 9000 <'$LAB_RUN/stream.in'"
    # lab_spawn logs to /run/lab/log/client.stream.log: that is the received stream.
    LAB_HA_STREAM_LOG=$LAB_RUN/log/client.stream.log
}

# lab_ha_stream_lines — lines received on the stream so far.
lab_ha_stream_lines() { grep -c '^tick' "$LAB_HA_STREAM_LOG" 2>/dev/null || echo 0; }

# lab_ha_stream_grows SECONDS — the stream receives new lines within SECONDS (and its client
# still runs).
lab_ha_stream_grows() {
    local before
    before=$(lab_ha_stream_lines)
    lab_wait "$1" sh -c "[ \$(grep -c '^tick' '$LAB_HA_STREAM_LOG') -gt $before ]" && lab_running client stream
}

# lab_ha_client_start NAME — from client, a new HTTP request to the VIP every 20 ms, each in the
# background with a 2 s timeout, until lab_ha_client_stop NAME. $LAB_RUN/ha.NAME.txt gets
# "START_MS END_MS ANSWER" per request (uptime milliseconds; ANSWER FAIL when none).
lab_ha_client_start() {
    local out=$LAB_RUN/ha.$1.txt stop=$LAB_RUN/ha.$1.stop
    rm -f "$stop"
    : >"$out"
    # shellcheck disable=SC2016 # the loop runs in the namespace's shell
    /sbin/ip netns exec client sh -c '
        while [ ! -e "$3" ]; do
            read -r up _ </proc/uptime
            start=${up%.*}${up#*.}0
            (
                answer=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 "$1" 80 2>/dev/null | tail -n 1)
                read -r up _ </proc/uptime
                echo "$start ${up%.*}${up#*.}0 ${answer:-FAIL}" >>"$2"
            ) &
            sleep 0.02
        done
        wait' sh "$LAB_HA_VIP" "$out" "$stop" &
    echo $! >"$LAB_RUN/ha.$1.pid"
}

# lab_ha_client_stop NAME — stop the loop and wait for its requests.
lab_ha_client_stop() {
    : >"$LAB_RUN/ha.$1.stop"
    wait "$(cat "$LAB_RUN/ha.$1.pid")" 2>/dev/null
}

# lab_ha_gap NAME CUT_MS — from the loop's record: LAB_HA_GAP, the longest time without any
# answer that ends after CUT_MS (from the last answer before the outage to the first after it,
# by completion time: requests keep completing every ~20 ms when the service is up);
# LAB_HA_LATE_FAILURES, failed requests started after that first answer; LAB_HA_TOTAL,
# LAB_HA_FAILED; and a line with the failures' start times relative to the cut.
lab_ha_gap() {
    local out=$LAB_RUN/ha.$1.txt cut=$2 span
    span=$(awk '$3 != "FAIL" { print $2 }' "$out" | sort -n | awk -v cut="$cut" '
        NR > 1 && $1 > cut && $1 - last > gap { gap = $1 - last; from = last; to = $1 }
        { last = $1 }
        END { if (gap == "") print "none"; else print from, to }')
    LAB_HA_TOTAL=$(awk 'END { print NR }' "$out")
    LAB_HA_FAILED=$(awk '$3 == "FAIL" { n++ } END { print n + 0 }' "$out")
    if [ "$span" = none ]; then
        LAB_HA_GAP=never
        LAB_HA_LATE_FAILURES=$LAB_HA_FAILED
        lab_say "client: $LAB_HA_TOTAL requests, $LAB_HA_FAILED failed; no answer after the cut"
        return
    fi
    # shellcheck disable=SC2086 # two numbers
    set -- $span
    LAB_HA_GAP=$(($2 - $1))
    LAB_HA_LATE_FAILURES=$(awk -v t="$2" '$3 == "FAIL" && $1 > t { n++ } END { print n + 0 }' "$out")
    lab_say "client: $LAB_HA_TOTAL requests, $LAB_HA_FAILED failed (started at ms $(awk -v c="$cut" '$3 == "FAIL" { printf "%s%+d", sep, $1 - c; sep = "," }' "$out") from the cut);" \
        "no answer from +$(($1 - cut)) to +$(($2 - cut)) ms: gap ${LAB_HA_GAP} ms; failed after the gap: $LAB_HA_LATE_FAILURES;" \
        "answers: $(awk '$3 != "FAIL" { print $3 }' "$out" | sort | uniq -c | awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }')"
}

# lab_ha_cut NS — take NS off the network (its eth0 down) and stop its agent at once (SIGKILL:
# nothing it holds is cleaned up, as when a node dies). LAB_HA_CUT: uptime ms right before the
# link goes down: a stamp taken after `ip` returned came 110-180 ms after the last answer in
# every run (starting `ip` under emulation), with the standby's detection matching the earlier time.
lab_ha_cut() {
    LAB_HA_CUT=$(lab_uptime_ms)
    /sbin/ip -n "$1" link set eth0 down
    # When the link was surely down: `ip` itself took over 2 s to run in a loaded CI run.
    LAB_HA_CUT_DONE=$(lab_uptime_ms)
    lab_kill "$1" agent KILL
}

# lab_ha_stream_across_failover EXPECT — a TCP stream through the VIP runs for 3 s, director is
# cut off, director2 takes over; EXPECT "survives": the stream keeps flowing and its client keeps
# running; EXPECT "breaks": the connection is reset or stalls within 10 s (no connection sync).
lab_ha_stream_across_failover() {
    local expect=$1 lines
    lab_step "a TCP stream through the VIP to port 9000"
    lab_ha_stream_start
    lab_must lab_wait 10 sh -c "[ \$(grep -c '^tick' '$LAB_HA_STREAM_LOG') -ge 20 ]"
    sleep 1
    lab_say "stream: $(lab_ha_stream_lines) lines before the failover"
    for ns in director director2; do
        lab_say "$ns: IPVS connections: $(/sbin/ip netns exec "$ns" ipvsadm -Lnc | awk 'NR > 2' | tr -s ' ' | tr '\n' ';')"
    done
    lab_step "director is cut off"
    lab_ha_cut director
    lab_check "director2 holds the VIP" lab_wait 10 lab_ha_holds director2
    lines=$(lab_ha_stream_lines)
    if [ "$expect" = survives ]; then
        lab_check "the stream flows on after the takeover" lab_ha_stream_grows 5
        sleep 3
        lab_check "and 3 s later still" lab_ha_stream_grows 5
        lab_say "stream: $lines lines at the takeover, $(lab_ha_stream_lines) now"
    else
        lab_check "the stream breaks (reset, or no line for 3 s) within 10 s" lab_wait 10 sh -c \
            "! kill -0 $(lab_pid client stream) 2>/dev/null || { n=\$(grep -c '^tick' '$LAB_HA_STREAM_LOG'); sleep 3; [ \$(grep -c '^tick' '$LAB_HA_STREAM_LOG') -eq \$n ]; }"
        lab_say "stream: $lines lines at the takeover, $(lab_ha_stream_lines) now; client running: $(lab_running client stream && echo yes || echo no)"
    fi
}

# ---- where a failover's time goes -----------------------------------------------------------
# lab_ha_timeline_start — watch, with timestamps, director2's addresses (when the VIP is added)
# and the client's neighbour table (when the client learns director2's MAC for the VIP: its
# gratuitous ARP arrived); call before the cut, then lab_ha_timeline after it.
lab_ha_timeline_start() {
    lab_spawn director2 addresses /sbin/ip -ts monitor address
    lab_spawn client neighbours /sbin/ip -ts monitor neigh
    # wall clock minus uptime (both in ms), to put wall-clock timestamps on the uptime scale
    local before after wall
    before=$(lab_uptime_ms)
    wall=$(lab_now_ms)
    after=$(lab_uptime_ms)
    LAB_HA_WALL_OFFSET=$((wall - (before + after) / 2))
}

# lab_ha_day_ms — the first line's YYYY-MM-DDTHH:MM:SS.ffffff timestamp (the agent's log, `ip
# -ts monitor`) as ms of the day.
lab_ha_day_ms() {
    sed -n 's/^[^T]*[0-9]T\([0-9][0-9]\):\([0-9][0-9]\):\([0-9][0-9]\)\.\([0-9][0-9][0-9]\).*/\1 \2 \3 \4/p' |
        head -n 1 | awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

# lab_ha_since_cut DAY_MS — ms from the cut to a wall-clock time of day (empty stays empty).
lab_ha_since_cut() {
    [ -n "$1" ] || return 0
    echo $(($1 - (LAB_HA_CUT + LAB_HA_WALL_OFFSET) % 86400000))
}

# lab_ha_timeline NAME — after lab_ha_failover_under_load NAME: prints, in ms after the cut, when
# director2 decided to take over (its log), when the VIP appeared on it, when the client's
# neighbour entry for the VIP moved to director2's MAC (the gratuitous ARP arrived), when the
# client's first answer came back; and how long before the cut the last answer came.
lab_ha_timeline() {
    local log=$LAB_RUN/log/director2.agent.log decided added learned first last
    lab_kill director2 addresses
    lab_kill client neighbours
    decided=$(grep 'taking over the VIP' "$log" | tail -n 1 | lab_ha_day_ms)
    added=$(grep "inet6\{0,1\} $LAB_HA_VIP/" "$LAB_RUN/log/director2.addresses.log" | grep -v Deleted | tail -n 1 | lab_ha_day_ms)
    learned=$(grep "^\[.*$LAB_HA_VIP .*$LAB_DIRECTOR2_MAC" "$LAB_RUN/log/client.neighbours.log" | head -n 1 | lab_ha_day_ms)
    first=$(awk -v c="$LAB_HA_CUT" '$3 != "FAIL" && $2 > c { print $2 }' "$LAB_RUN/ha.$1.txt" | sort -n | head -n 1)
    last=$(awk -v c="$LAB_HA_CUT" '$3 != "FAIL" && $2 <= c { print $2 }' "$LAB_RUN/ha.$1.txt" | sort -n | tail -n 1)
    lab_say "timeline after the cut (ms): last answer -$((LAB_HA_CUT - ${last:-$LAB_HA_CUT})), decision +$(lab_ha_since_cut "$decided")," \
        "VIP added +$(lab_ha_since_cut "$added"), client learned the MAC +$(lab_ha_since_cut "$learned"), first answer +$((${first:-$LAB_HA_CUT} - LAB_HA_CUT))"
    lab_say "requests around the cut (start→end ms from the cut, answer): $(awk -v c="$LAB_HA_CUT" \
        '$1 - c > -600 && $1 - c < 1500 { printf "%s%+d→%+d %s", sep, $1 - c, $2 - c, $3; sep = ", " }' "$LAB_RUN/ha.$1.txt")"
    lab_say "director2's agent: $(grep -c 'taking over the VIP' "$log") takeover(s), $(grep -c 'did not run for a while' "$log") stall(s); from the decision to the announcement:"
    sed -n '/taking over the VIP/,/took over the VIP/p' "$log" | tail -n 25 | sed 's/^/    /'
    echo "request_median_ms=$(awk '$3 != "FAIL" { print $2 - $1 }' "$LAB_RUN/ha.$1.txt" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }')"
    echo "cut_to_decision_ms=$(lab_ha_since_cut "$decided")"
    echo "cut_to_vip_added_ms=$(lab_ha_since_cut "$added")"
    echo "cut_to_client_arp_ms=$(lab_ha_since_cut "$learned")"
    echo "cut_to_first_answer_ms=$((${first:-$LAB_HA_CUT} - LAB_HA_CUT))"
    echo "last_answer_before_cut_ms=$((LAB_HA_CUT - ${last:-$LAB_HA_CUT}))"
}

# ---- a light client: one datagram every 20 ms -------------------------------------------------
# The HTTP loop starts a shell, printf, nc and tail per request: under the lab's emulated CPU a
# request leaves only every ~80 ms and takes ~250 ms, so its gap adds 200-500 ms of its own. The
# UDP probe is one long-lived socat: a datagram carrying its send time every 20 ms to VIP:9999,
# each real server echoing it back (socat PIPE, no process per datagram).

# lab_ha_udp_servers — echo servers on rs1 and rs2 (UDP 9999 on the VIP) and, in
# $LAB_RUN/udp-probe.yaml, a VirtualServer for them on the VIP with the same failover settings.
lab_ha_udp_servers() {
    local ns listen=UDP4-LISTEN:9999,bind=$LAB_HA_VIP
    case $LAB_HA_VIP in *:*) listen="UDP6-LISTEN:9999,bind=[$LAB_HA_VIP]" ;; esac
    for ns in rs1 rs2; do
        lab_spawn "$ns" udp-echo sh -c "while :; do socat -T 5 $listen,reuseaddr PIPE; done"
    done
    cat >"$LAB_RUN/udp-probe.yaml" <<EOF
apiVersion: lvs.operator.io/v1alpha1
kind: VirtualServer
metadata:
  name: udp-probe
  namespace: lab
spec:
  address: $LAB_HA_VIP
  port: 9999
  protocol: UDP
  scheduler: rr
  directors:
    interface: eth0
    highAvailability:
      priority: [director-1, director-2]
      preempt: false
      preemptDelaySeconds: 2
      connectionSync:
        enabled: true
        syncId: 7
        failbackSyncSeconds: 3
  realServers:
    selector:
      matchLabels:
        app: ha
  healthCheck:
    type: None
EOF
}

# lab_ha_udp_setup [SERVICES] — lab_ha_udp_servers, then that VirtualServer added to the running
# agents' folder; waits until both directors programmed it (SERVICES: how many director services
# they then have, default 3).
lab_ha_udp_setup() {
    lab_ha_udp_servers
    lab_agent_mark director
    lab_agent_mark director2
    lab_must lab_manifest_put "$LAB_HA_DIR" udp-probe.yaml "$LAB_RUN/udp-probe.yaml"
    lab_must lab_agent_wait_synced director "${1:-3}" 0 60
    lab_must lab_agent_wait_synced director2 "${1:-3}" 0 60
}

# lab_ha_udp_start — the client's datagrams; $LAB_RUN/udp.txt gets "SENT_MS RECEIVED_MS" per echo.
lab_ha_udp_start() {
    local peer=UDP4:$LAB_HA_VIP:9999
    case $LAB_HA_VIP in *:*) peer="UDP6:[$LAB_HA_VIP]:9999" ;; esac
    rm -f "$LAB_RUN/udp.stop" "$LAB_RUN/udp.fifo"
    : >"$LAB_RUN/udp.txt"
    # The 20 ms pause is a read with a timeout on a FIFO nobody writes: no process per datagram
    # (busybox sleep is not a shell builtin). It runs at nice -10 (its shell renices itself
    # first; busybox has renice, not nice): the measuring client must not be starved by the HTTP
    # loop (a process per request every 20 ms) and the agents on the VM's one CPU, or its own
    # pauses before the cut count as outage.
    mkfifo "$LAB_RUN/udp.fifo"
    # shellcheck disable=SC2016 # the loops run in the namespace's shell
    /sbin/ip netns exec client sh -c '
        renice -n -10 -p $$ >/dev/null 2>&1
        exec 3<>"$4"
        while [ ! -e "$2" ]; do
            read -r up _ </proc/uptime
            echo "${up%.*}${up#*.}0"
            read -r -t 0.02 _ <&3
        done | socat -T 3 - "$5" | while read -r sent; do
            read -r up _ </proc/uptime
            echo "$sent ${up%.*}${up#*.}0"
        done >>"$3"' sh "$LAB_HA_VIP" "$LAB_RUN/udp.stop" "$LAB_RUN/udp.txt" "$LAB_RUN/udp.fifo" "$peer" &
    echo $! >"$LAB_RUN/udp.pid"
}

# lab_ha_udp_stop CUT_MS — stop the datagrams; LAB_HA_UDP_GAP: the longest silence between two
# echoes received one after the other (by receive time; echoes come every ~20 ms while the VIP
# answers), the first of them received before 2 s after the link was down (LAB_HA_CUT_DONE, else
# CUT_MS) and the second after CUT_MS — the silence the cut caused; "never" when no echo came
# after it; LAB_HA_UDP_FIRST: the end of that silence, ms after the cut (the first echo through
# the new director). (Not by the datagrams' send stamps: a client that lags behind its 20 ms
# pace under emulation sends datagrams stamped before the cut after it.)
lab_ha_udp_stop() {
    : >"$LAB_RUN/udp.stop"
    sleep 1
    kill "$(cat "$LAB_RUN/udp.pid")" 2>/dev/null
    LAB_HA_UDP_GAP=$(awk '{ print $2 }' "$LAB_RUN/udp.txt" | sort -n | awk -v cut="$1" -v done="${LAB_HA_CUT_DONE:-$1}" '
        NR > 1 && $1 > cut && last < done + 2000 && $1 - last > gap { gap = $1 - last; from = last; to = $1 }
        { last = $1 }
        END { if (gap == "") print "never"; else print gap, from - cut, to - cut }')
    lab_say "UDP probe: $(awk 'END { print NR }' "$LAB_RUN/udp.txt") echoes; silence across the cut (ms, from, to): $LAB_HA_UDP_GAP"
    # shellcheck disable=SC2086 # "GAP FROM TO" or "never"
    set -- $LAB_HA_UDP_GAP
    LAB_HA_UDP_GAP=$1
    LAB_HA_UDP_FIRST=${3:-never}
    export LAB_HA_UDP_FIRST
}
