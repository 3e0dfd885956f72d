#!/bin/sh
# agent-health — lvs-agent's HTTP health checks (1 s interval, fall 2, rise 2) under client loops: a stopped real server is quiesced (weight 0) or removed within interval×fall + one interval, comes back after rise checks, the fallback answers when all are down
# lab-timeout: 240
#
# manifests/health.yaml: two one-armed NAT services to the real servers' :8080 — web-quiescent
# on 10.100.0.100:80 (onFailure Quiescent) and web-remove on 10.100.0.101:80 (onFailure Remove),
# rs1 weight 2, rs2 weight 1, fallback 10.100.0.13:8080 (an HTTP server in namespace rs3 that
# answers "fallback"; no agent there). Client loops to both services run in the background;
# rs1's web server is stopped: no request that starts later than interval×fall + one interval
# (3 s) after the stop may fail; ipvsadm shows rs1 with weight 0 (Quiescent) and without rs1
# (Remove). rs1's server starts again: rs1 is back with weight 2 in both within (rise + 1)
# intervals + 2 s. Both real servers stopped: the fallback is the destination and answers;
# rs2 started again: the fallback leaves. Prints quiesce_ms, remove_ms, rise_ms, fallback_ms.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VQ=$LAB_VIP  # web-quiescent
VR=$LAB_VIP2 # web-remove
INTERVAL_MS=1000 FALL=2 RISE=2
DOWN_MS=$((INTERVAL_MS * FALL + INTERVAL_MS))
UP_MS=$((INTERVAL_MS * (RISE + 1) + 2000))

lab_step "topology; web servers on :8080 in rs1, rs2 and the fallback in rs3"
lab_topology 3
for rs in rs1 rs2; do lab_must lab_http_server "$rs" 8080; done
lab_must lab_http_server rs3 8080 fallback
FALLBACK=$LAB_RS3_IP:8080

# refresh — take a snapshot of the director's IPVS table (TABLE); weight and weights_are read it.
refresh() { TABLE=$(lab_ns director ipvsadm -Ln); }
# weight VIP ADDR:PORT — the destination's weight in service VIP:80 of the snapshot, or "absent".
weight() {
    printf '%s\n' "$TABLE" | awk -v s="$1:80" -v d="$2" '
        $1 == "TCP" || $1 == "UDP" || $1 == "FWM" { on = ($2 == s) }
        on && $1 == "->" && $2 == d { w = $4 }
        END { print (w == "" ? "absent" : w) }'
}
# weights_are VIP RS1 RS2 FALLBACK — in the snapshot, the three destinations' weights in VIP:80.
weights_are() {
    [ "$(weight "$1" "$LAB_RS1_IP:8080")" = "$2" ] && [ "$(weight "$1" "$LAB_RS2_IP:8080")" = "$3" ] &&
        [ "$(weight "$1" "$FALLBACK")" = "$4" ]
}
# show — a fresh snapshot, both services' destinations on one line.
show() {
    refresh
    echo "quiescent: rs1=$(weight "$VQ" "$LAB_RS1_IP:8080") rs2=$(weight "$VQ" "$LAB_RS2_IP:8080") fallback=$(weight "$VQ" "$FALLBACK");" \
        "remove: rs1=$(weight "$VR" "$LAB_RS1_IP:8080") rs2=$(weight "$VR" "$LAB_RS2_IP:8080") fallback=$(weight "$VR" "$FALLBACK")"
}
# the states the scenario waits for (each takes a fresh snapshot)
all_up() { refresh && weights_are "$VQ" 2 1 absent && weights_are "$VR" 2 1 absent; }
all_down() { refresh && weights_are "$VQ" 0 0 1 && weights_are "$VR" absent absent 1; }
rs2_only() { refresh && weights_are "$VQ" 0 1 absent && weights_are "$VR" absent 1 absent; }
# wait_for SINCE_MS SECONDS CMD... — poll CMD every 0.1 s for up to SECONDS; prints the
# milliseconds from SINCE_MS (e.g. the moment a server was stopped) to its first success, or
# "never".
wait_for() {
    local since=$1 limit=$(($2 * 1000)) begin now
    shift 2
    begin=$(lab_now_ms)
    while :; do
        now=$(lab_now_ms)
        if "$@"; then echo $((now - since)); return 0; fi
        [ $((now - begin)) -gt "$limit" ] && { echo never; return 1; }
        sleep 0.1
    done
}

lab_step "agents in loop mode"
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" health.yaml /lab/manifests/health.yaml
for ns in director rs1 rs2; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 2 0
lab_must lab_agent_wait_all 0 0 rs1 rs2
lab_ns director ipvsadm -Ln
lab_check "both services: rs1 weight 2, rs2 weight 1, no fallback" lab_wait 10 all_up
show

lab_step "client loops; rs1's web server stops"
lab_bg_loop_start q client tcp "$VQ" 80
lab_bg_loop_start r client tcp "$VR" 80
lab_must lab_bg_loop_wait q 3
lab_must lab_bg_loop_wait r 3
stop=$(lab_now_ms)
lab_must lab_kill rs1 http-8080
quiesce_ms='' remove_ms=''
while :; do # both at once: one snapshot a round
    now=$(lab_now_ms)
    refresh
    [ -z "$quiesce_ms" ] && weights_are "$VQ" 0 1 absent && quiesce_ms=$((now - stop))
    [ -z "$remove_ms" ] && weights_are "$VR" absent 1 absent && remove_ms=$((now - stop))
    [ -n "$quiesce_ms" ] && [ -n "$remove_ms" ] && break
    [ $((now - stop)) -gt 10000 ] && break
    sleep 0.1
done
echo "quiesce_ms=${quiesce_ms:-never}"
echo "remove_ms=${remove_ms:-never}"
show
lab_check "Quiescent: rs1 weight 0, rs2 1 (after ${quiesce_ms:-never} ms)" weights_are "$VQ" 0 1 absent
lab_check "Remove: rs1 gone, rs2 1 (after ${remove_ms:-never} ms)" weights_are "$VR" absent 1 absent
deadline=$((stop + DOWN_MS))
lab_must lab_bg_loop_wait q 5 "$deadline"
lab_must lab_bg_loop_wait r 5 "$deadline"
for loop in q r; do
    lab_bg_loop_stop "$loop"
    lab_say "loop $loop: $(awk -v s="$stop" -v d="$deadline" '$1 >= s && $1 < d && $3 == "FAIL" { n++ } END { print n + 0 }' \
        "$LAB_RUN/bg.$loop.txt") failed request(s) started in the first $DOWN_MS ms after the stop (allowed)"
    lab_check_eq "loop $loop: failed requests started more than $DOWN_MS ms after the stop" \
        "$(lab_bg_loop_failed_after "$loop" "$deadline")" 0
    lab_check_ge "loop $loop: requests started more than $DOWN_MS ms after the stop" \
        "$(lab_bg_loop_count "$loop" "$deadline")" 5
done

lab_step "rs1's web server starts again"
started=$(lab_now_ms)
lab_must lab_restart rs1 http-8080
lab_must lab_wait_listen rs1 tcp 8080
rise_ms=$(wait_for "$started" 10 all_up)
echo "rise_ms=$rise_ms"
show
lab_check "rs1 back with weight 2 in both services within $UP_MS ms (took $rise_ms)" \
    sh -c "[ '$rise_ms' != never ] && [ '$rise_ms' -le $UP_MS ]"
lab_fast_loop client "$VQ" 80 6
lab_check_loop "Quiescent service after the rise" rs1 rs2
lab_fast_loop client "$VR" 80 6
lab_check_loop "Remove service after the rise" rs1 rs2

lab_step "every real server stops: the fallback answers"
stop=$(lab_now_ms)
lab_must lab_kill rs1 http-8080
lab_must lab_kill rs2 http-8080
fallback_ms=$(wait_for "$stop" 10 all_down)
echo "fallback_ms=$fallback_ms"
show
lab_check "Quiescent: rs1 0, rs2 0, fallback 1; Remove: only the fallback (after $fallback_ms ms)" all_down
for vip in "$VQ" "$VR"; do
    lab_fast_loop client "$vip" 80 6
    lab_check_eq "$vip:80 with every real server down: answers from the fallback ($LAB_LOOP_SUMMARY)" \
        "$(lab_loop_count fallback)" 6
done

lab_step "rs2 starts again: the fallback leaves"
started=$(lab_now_ms)
lab_must lab_restart rs2 http-8080
lab_must lab_wait_listen rs2 tcp 8080
back_ms=$(wait_for "$started" 10 rs2_only)
show
lab_check "rs2 back, fallback gone (after $back_ms ms)" rs2_only
lab_fast_loop client "$VR" 80 4
lab_check_eq "$VR:80: answers from rs2 ($LAB_LOOP_SUMMARY)" "$(lab_loop_count rs2)" 4

lab_finish
