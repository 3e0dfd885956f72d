#!/bin/sh
# ha-split-brain — nftables in director2 drops the failover heartbeats (UDP 9751) both ways. director2 has the higher priority here (priority: [director-2, director-1]) but director holds the VIP (it started first; no preemption). While director still answers ARP for the VIP, director2 holds back for the restart hold (3 s here: a silent holder whose VIP still answers may be an agent restarting); then, unable to hear director, it takes the VIP too; each director's ARP probe finds the other's MAC; DuplicateVIP is reported and director (lower priority) steps down and holds back, so exactly one MAC answers ARP for the VIP within a few seconds; when heartbeats flow again the duplicate clears. Prints resolved_ms (heartbeats dropped → one owner again).
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, director2 preferred, director holding the VIP (restart hold 3 s)"
LAB_HA_ARGS="--restart-hold-seconds 3"
lab_ha_setup 's/priority: \[director-1, director-2\]/priority: [director-2, director-1]/'

lab_step "director2 drops heartbeats in and out"
lab_must /sbin/ip netns exec director2 nft -f - <<'NFT'
table inet lab-split {
    chain input { type filter hook input priority 0; udp dport 9751 drop; }
    chain output { type filter hook output priority 0; udp dport 9751 drop; }
}
NFT
dropped=$(lab_uptime_ms)
sleep 1.5
lab_check "director2 holds back while director still answers for the VIP (restart hold)" lab_ha_not_holds director2
lab_check "director2 takes the VIP too after the hold (it cannot hear director)" lab_wait 10 lab_ha_holds director2
# duplicate_reported — a director's status has DuplicateVIP True (reason AnsweredElsewhere, only
# ever on that condition); keeps a copy of the status that said so.
duplicate_reported() {
    local ns
    for ns in director director2; do
        if grep -q '"reason": "AnsweredElsewhere"' "$LAB_RUN/agent.$ns.status" 2>/dev/null; then
            cp "$LAB_RUN/agent.$ns.status" "$LAB_RUN/duplicate.status" && echo "$ns" >"$LAB_RUN/duplicate.node"
            return 0
        fi
    done
    return 1
}
lab_check "DuplicateVIP is reported (condition True, reason AnsweredElsewhere)" lab_wait 10 duplicate_reported
lab_say "reported by $(cat "$LAB_RUN/duplicate.node" 2>/dev/null):"
grep -B4 -A2 '"reason": "AnsweredElsewhere"' "$LAB_RUN/duplicate.status" 2>/dev/null | sed 's/^/    /'
grep -A2 '"duplicateOwners"' "$LAB_RUN/duplicate.status" 2>/dev/null | sed 's/^/    /'
lab_check "director (lower priority) steps down; director2 keeps the VIP" lab_wait 10 lab_ha_only director2
resolved=$(lab_uptime_ms)
lab_ha_probe client
lab_check_eq "MACs answering ARP (IPv6: NDP) for the VIP: $(lab_arp_owners)" "$LAB_ARP_MACS" "$LAB_DIRECTOR2_MAC"
sleep 3
lab_check "director stays back while heartbeats are dropped" lab_ha_not_holds director
lab_fast_loop client "$LAB_HA_VIP" 80 20
lab_check_eq "requests to the VIP that failed" "$LAB_LOOP_FAILED" 0

lab_step "heartbeats flow again"
lab_must /sbin/ip netns exec director2 nft delete table inet lab-split
lab_check "DuplicateVIP clears on director (reason NoDuplicate)" lab_wait 10 sh -c \
    "grep -q '\"reason\": \"NoDuplicate\"' '$LAB_RUN/agent.director.status' && ! grep -q AnsweredElsewhere '$LAB_RUN/agent.director.status'"
lab_check "director2 still the only holder" lab_ha_only director2
echo "resolved_ms=$((resolved - dropped))"
lab_finish
