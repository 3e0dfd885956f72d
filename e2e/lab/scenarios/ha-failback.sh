#!/bin/sh
# ha-failback — preemption with sync-aware failback: director (priority 1) is cut off and director2 takes over; director comes back (agent first, then its link) and takes the VIP back only after it has been a synced backup for failbackSyncSeconds (3) and eligible for preemptDelaySeconds (2); a TCP stream through the VIP survives both moves. Prints failback_ms (link up → director holds the VIP again).
# lab-timeout: 300
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, preemption on, connection sync on"
lab_ha_setup 's/preempt: false/preempt: true/'
lab_ha_stream_across_failover survives

lab_step "director returns: its agent starts (link still down), then its link comes up"
lab_agent_start director "$LAB_HA_DIR"
lab_must lab_agent_wait_synced director 2 0
lab_check "the returning director dropped the VIP it held when it died" lab_ha_not_holds director
up=$(lab_uptime_ms)
/sbin/ip -n director link set eth0 up
sleep 2.5
lab_check "director2 keeps the VIP for the first 3 s (failback sync time)" lab_ha_only director2
lab_check "director takes the VIP back" lab_wait 20 lab_ha_only director
back=$(lab_uptime_ms)
lab_check "the stream flows on after the failback" lab_ha_stream_grows 5
lab_say "stream: $(lab_ha_stream_lines) lines"
lab_check "director's record says Preempt from director-2" sh -c \
    "grep -q '\"reason\": \"Preempt\"' '$LAB_RUN/agent.director.status' && grep -q '\"from\": \"director-2\"' '$LAB_RUN/agent.director.status'"
echo "failback_ms=$((back - up))"
lab_finish
