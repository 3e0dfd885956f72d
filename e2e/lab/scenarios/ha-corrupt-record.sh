#!/bin/sh
# ha-corrupt-record — a corrupt ownership record never puts the VIP on two nodes: two directors, a client request every 20 ms; the active director's ownership record (owned.json) is truncated and its agent restarted. The agent sets the record aside (owned.json.corrupt), starts from an empty one — the VIP and IPVS services on its own lvs0 device are still its own — and keeps heartbeating as the holder, so director2 never takes the VIP. An ARP probe from the client every 200 ms for 10 s must be answered by exactly one MAC, director's; prints longest_gap_ms= of the client loop.
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, two real servers; director holds the VIP"
lab_ha_setup
lab_ha_client_start c
sleep 2

lab_step "director's ownership record is truncated and its agent restarted"
record=$LAB_RUN/agent.director.owned.json
lab_must lab_kill director agent TERM
head -c 40 "$record" >"$record.cut" && mv "$record.cut" "$record"
lab_say "record now: $(cat "$record")"
lab_agent_mark director
lab_must lab_restart director agent

lab_step "an ARP probe every 200 ms for 10 s: exactly one MAC, director's"
# Each probe waits up to 1 s for two replies: one owner answers once, two owners twice.
i=0 probes=''
while [ $i -lt 50 ]; do
    /sbin/ip netns exec client arping -b -c 2 -w 1 -I eth0 "$LAB_HA_VIP" >"$LAB_RUN/arp.$i.txt" 2>&1 &
    probes="$probes $!"
    i=$((i + 1))
    sleep 0.2
done
# shellcheck disable=SC2086 # a list of pids
wait $probes
one=0 other=''
i=0
while [ $i -lt 50 ]; do
    macs=$(sed -n 's/.*reply from .* \[\([0-9a-fA-F:]*\)\].*/\1/p' "$LAB_RUN/arp.$i.txt" | tr 'A-F' 'a-f' | sort -u | tr '\n' ' ')
    macs=${macs% }
    if [ "$macs" = "$LAB_DIRECTOR_MAC" ]; then
        one=$((one + 1))
    else
        other="$other${other:+; }probe $i: ${macs:-none}"
    fi
    i=$((i + 1))
done
lab_say "probes answered by director's MAC alone: $one of 50${other:+; others: $other}"
lab_check_eq "probes answered by exactly one MAC, director's ($LAB_DIRECTOR_MAC)" "$one" 50

lab_step "the agent runs on, the corrupt record set aside"
lab_must lab_agent_wait_synced director 2 0
lab_check "the corrupt record was kept for inspection" test -s "$record.corrupt"
lab_check "a new record was written" grep -q '"addresses"' "$record"
lab_check "director holds the VIP, director2 does not" lab_ha_only director
lab_ha_client_stop c
lab_ha_gap c 0
lab_check_eq "requests that failed" "$LAB_HA_FAILED" 0
echo "longest_gap_ms=$LAB_HA_GAP"
lab_finish
