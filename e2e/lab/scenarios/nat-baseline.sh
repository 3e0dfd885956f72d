#!/bin/sh
# nat-baseline — IPVS NAT by hand: ip_forward, vs.conntrack=1 and an nftables masquerade; port 80 -> 8080
# lab-timeout: 180
#
# One-armed NAT as in the seeds: client, director and real servers share br0, so the director
# must masquerade what it forwards to the real servers (else they answer the client directly and
# the client drops the reply). net.ipv4.vs.conntrack=1 lets netfilter NAT see IPVS's packets. The
# real servers listen on 8080 only (NAT may remap the port) and hold no VIP.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs nf_tables nft_chain_nat nft_masq

lab_topology 2
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 8080
done

lab_director_vip director "$LAB_VIP"
lab_must lab_ns director sysctl -qw net.ipv4.ip_forward=1 net.ipv4.vs.conntrack=1
lab_must lab_ns director nft -f - <<NFT
table ip lab_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip daddr { $LAB_RS1_IP, $LAB_RS2_IP } tcp dport 8080 masquerade
    }
}
NFT
lab_must lab_ns director ipvsadm -A -t "$LAB_VIP:80" -s rr
for rs in $LAB_SERVERS; do
    lab_must lab_ns director ipvsadm -a -t "$LAB_VIP:80" -r "$(lab_ip4 "$rs"):8080" -m
done
lab_ns director ipvsadm -Ln

lab_client_loop client tcp "$LAB_VIP" 80 20
lab_check_loop "TCP/IPv4 to $LAB_VIP:80 (NAT to :8080)" rs1 rs2
lab_check_eq "connections IPVS scheduled" "$(lab_ipvs_conns director 20)" 20
# The masquerade really happened: the real servers' httpd logs name the director, never the client.
lab_log_tail rs1 http-8080 2
for rs in $LAB_SERVERS; do
    lab_check_ge "requests $rs logged from the director's address" \
        "$(grep -cF "$LAB_DIRECTOR_IP]:" "$LAB_RUN/log/$rs.http-8080.log")" 10
    lab_check_eq "requests $rs logged from the client's address" \
        "$(grep -cF "$LAB_CLIENT_IP]:" "$LAB_RUN/log/$rs.http-8080.log")" 0
done
lab_check_ge "director's conntrack entries translated to its own address" \
    "$(lab_ns director cat /proc/net/nf_conntrack 2>/dev/null | grep -c "dst=$LAB_DIRECTOR_IP ")" 1

lab_finish
