# e2e/lab/lib/state.sh — what a failed scenario leaves behind, printed for whoever reads the log:
# per namespace (root first) IPVS table, addresses, routes, neighbours, nftables ruleset and
# ARP sysctls; then the logs of spawned processes and the kernel's last messages.

lab_dump_ns() {
    local ns=$1 run=""
    [ "$ns" = root ] || run="/sbin/ip netns exec $ns"
    echo "----- state of namespace $ns"
    echo "# ipvsadm -Ln"
    $run ipvsadm -Ln 2>&1
    echo "# ip addr"
    $run /sbin/ip -br addr 2>&1
    echo "# ip route / ip -6 route"
    $run /sbin/ip route 2>&1
    $run /sbin/ip -6 route 2>&1 | grep -v '^fe80'
    echo "# ip neigh"
    $run /sbin/ip neigh 2>&1
    echo "# nft list ruleset"
    $run nft list ruleset 2>&1
    echo "# sysctl arp_ignore arp_announce ip_forward vs.conntrack"
    $run sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce net.ipv4.ip_forward \
        net.ipv4.vs.conntrack 2>/dev/null
}

lab_dump_state() {
    local ns log
    echo "===== lab: state after failure"
    lab_dump_ns root
    for ns in $(/sbin/ip netns list 2>/dev/null | awk '{ print $1 }'); do
        lab_dump_ns "$ns"
    done
    for log in "$LAB_RUN"/log/*.log; do
        [ -s "$log" ] || continue
        echo "----- last lines of ${log##*/}"
        tail -n 20 "$log"
    done
    echo "----- last kernel messages"
    dmesg | tail -n 30
    echo "===== lab: end of state"
}
