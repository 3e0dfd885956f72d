#!/bin/sh
# ha-rollout — restarting the agents never moves a VIP: two directors (default failover settings), a client request every 20 ms and a TCP stream through the VIP; the active director's agent is restarted three times (SIGTERM, kill -9, SIGTERM), then the standby's. A restarted agent finds the VIP on its own device, its saved failover state (failover.json) says it held it, and it heartbeats as the holder at once; on SIGTERM it first tells its peer it is restarting. Prints failed_requests= (must be 0), takeovers= (must be 0: the VIP never moved), longest_gap_ms= and stream=alive.
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

# takeover_lines — "taking over the VIP" lines in both directors' agent logs (appended across
# restarts).
takeover_lines() { cat "$LAB_RUN/log/director.agent.log" "$LAB_RUN/log/director2.agent.log" | grep -c 'taking over the VIP'; }

lab_step "two directors, two real servers; director holds the VIP"
lab_ha_setup
before=$(takeover_lines)
lab_ha_stream_start
lab_must lab_wait 10 sh -c "[ \$(grep -c '^tick' '$LAB_HA_STREAM_LOG') -ge 10 ]"
lab_ha_client_start r
# Every 100 ms until the client stops: does director2 have the VIP?
(while [ ! -e "$LAB_RUN/ha.r.stop" ]; do
    lab_ha_holds director2 && echo "$(lab_uptime_ms) director2"
    sleep 0.1
done) >"$LAB_RUN/director2.held" &
watcher=$!
sleep 2

# restart NS SIGNAL — stop NS's agent with SIGNAL, start it again with the same command, wait
# until it synced and 2 s more.
restart() {
    lab_must lab_kill "$1" agent "$2"
    lab_agent_mark "$1"
    lab_must lab_restart "$1" agent
    lab_must lab_agent_wait_synced "$1" 2 0
    sleep 2
}
for signal in TERM KILL TERM; do
    lab_step "the active director's agent is restarted (SIG$signal)"
    restart director "$signal"
    lab_check "director still holds the VIP, director2 does not" lab_ha_only director
done
lab_step "the standby's agent is restarted (SIGTERM)"
restart director2 TERM
lab_check "director still holds the VIP, director2 does not" lab_ha_only director

lab_ha_client_stop r
wait "$watcher" 2>/dev/null
lab_ha_gap r 0
takeovers=$(($(takeover_lines) - before))
held=$(awk 'END { print NR }' "$LAB_RUN/director2.held")
lab_check "the stream is still flowing" lab_ha_stream_grows 5
stream=dead
lab_running client stream && stream=alive
lab_say "stream: $(lab_ha_stream_lines) lines; director2 held the VIP in $held of the samples"
lab_check_eq "requests that failed" "$LAB_HA_FAILED" 0
lab_check_eq "takeovers (either director)" "$takeovers" 0
lab_check_eq "samples in which director2 had the VIP" "$held" 0
lab_check_eq "the stream" "$stream" alive
echo "failed_requests=$LAB_HA_FAILED"
echo "takeovers=$takeovers"
echo "longest_gap_ms=$LAB_HA_GAP"
echo "stream=$stream"
lab_finish
