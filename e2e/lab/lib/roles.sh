# e2e/lab/lib/roles.sh — director and real-server set-ups done by hand with ip/sysctl, the
# baseline the project's agent must reproduce. IPVS services themselves are left to the scenario
# (ipvsadm here; the agent later).

# lab_director_vip NS ADDR... — VIP(s) on the director's eth0 (/32 or /128, no DAD).
lab_director_vip() {
    local ns=$1 addr
    shift
    for addr in "$@"; do
        case $addr in
        *:*) lab_must ip -n "$ns" addr add "$addr/128" dev eth0 nodad ;;
        *) lab_must ip -n "$ns" addr add "$addr/32" dev eth0 ;;
        esac
    done
}

# lab_rs_vip NS DEVICE ADDR... — VIP(s) as /32 (/128) on DEVICE (lo, tunl0, a dummy).
lab_rs_vip() {
    local ns=$1 dev=$2 addr
    shift 2
    lab_must ip -n "$ns" link set "$dev" up
    for addr in "$@"; do
        case $addr in
        *:*) lab_must ip -n "$ns" addr add "$addr/128" dev "$dev" nodad ;;
        *) lab_must ip -n "$ns" addr add "$addr/32" dev "$dev" ;;
        esac
    done
}

# lab_rs_arp_sysctls NS — the sysctl method against the ARP problem: answer ARP only for
# addresses on the receiving interface (arp_ignore=1), and source ARP requests from the
# outgoing interface's address, never the VIP (arp_announce=2).
lab_rs_arp_sysctls() {
    lab_must lab_ns "$1" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
}

# lab_rs_tunnel NS ADDR... — IP-IP real server: tunl0 up with the VIP(s), rp_filter relaxed so
# decapsulated packets (client source, arriving on tunl0) are accepted.
lab_rs_tunnel() {
    local ns=$1
    shift
    lab_must lab_modprobe ipip
    lab_rs_vip "$ns" tunl0 "$@"
    lab_must lab_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv4.conf.tunl0.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
}

# lab_ipvs_conns NS [EXPECTED] — total connections IPVS scheduled in NS (sum of the Conns
# column of ipvsadm -Ln --stats). The kernel folds its per-CPU counters into these figures only
# every 2 s, so with EXPECTED it polls (up to 6 s) until the sum reaches it before printing.
lab_ipvs_conns() {
    local n tries=30
    while :; do
        n=$(lab_ns "$1" ipvsadm -Ln --stats | awk '$1 == "TCP" || $1 == "UDP" || $1 == "SCTP" { n += $3 } END { print n + 0 }')
        [ -z "${2:-}" ] || [ "$n" -ge "$2" ] || [ "$tries" -eq 0 ] && break
        tries=$((tries - 1))
        sleep 0.2
    done
    echo "$n"
}

# lab_bench_rules SERVICES DESTINATIONS — an `ipvsadm -R` rule set: SERVICES TCP services
# 10.200.x.y:80 (rr), each with DESTINATIONS NAT destinations in 10.201.0.0/16, weight 1.
lab_bench_rules() {
    awk -v s="$1" -v d="$2" 'BEGIN {
        for (i = 0; i < s; i++) {
            vip = sprintf("10.200.%d.%d:80", int(i / 250), i % 250 + 1)
            printf "-A -t %s -s rr\n", vip
            for (j = 0; j < d; j++) {
                k = i * d + j + 2
                printf "-a -t %s -r 10.201.%d.%d:80 -m -w 1\n", vip, int(k / 250), k % 250 + 1
            }
        }
    }'
}
