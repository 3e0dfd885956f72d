#!/bin/sh
# ha-failover — two directors with failover (default settings: heartbeats every 200 ms, dead after 3): a client sends a request every 20 ms; the active director is cut off (its link down, its agent killed) → the standby takes the VIP, announces it and serves; no request that starts after the gap fails. Prints the standby's detection and announcement times and, last, gap_ms (the time between the last answer before the cut and the first after it; target < 1000).
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, two real servers; the agents share a failover key"
lab_ha_setup
lab_arp_probe client "$LAB_HA_VIP"
lab_check_eq "MACs answering ARP for the VIP: $(lab_arp_owners)" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "a request every 20 ms; director is cut off"
lab_ha_failover_under_load f
cut=$LAB_HA_CUT
lab_check "answers from both real servers after the cut" sh -c \
    "awk -v c=$cut '\$2 > c && \$3 == \"rs1\" { a++ } \$2 > c && \$3 == \"rs2\" { b++ } END { exit !(a && b) }' $LAB_RUN/ha.f.txt"
lab_arp_probe client "$LAB_HA_VIP"
lab_check_eq "MACs answering ARP for the VIP: $(lab_arp_owners)" "$LAB_ARP_MACS" "$LAB_DIRECTOR2_MAC"

lab_step "director2's record of the takeover"
lab_must lab_wait 5 grep -q '"garpSentAt"' "$LAB_RUN/agent.director2.status"
sed -n '/"lastFailover"/,/}/p' "$LAB_RUN/agent.director2.status"
detection=$(lab_agent_status_field director2 detectionMillis)
duration=$(lab_agent_status_field director2 durationMillis)
lab_check "the record names director-1 as the previous holder" grep -q '"from": "director-1"' "$LAB_RUN/agent.director2.status"
echo "detection_ms=$detection"
echo "garp_after_detection_ms=$((duration - detection))"
echo "failover_duration_ms=$duration"
echo "gap_ms=$LAB_HA_GAP"
lab_finish
