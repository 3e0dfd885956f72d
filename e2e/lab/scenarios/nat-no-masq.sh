#!/bin/sh
# nat-no-masq — negative test: one-armed NAT without the masquerade fails, as the seeds warn (detected = pass)
# lab-timeout: 240
#
# nat-baseline without the nftables masquerade: the real servers answer the client directly
# from their own address and port, the client does not recognise those replies, and no request
# succeeds. Passes when every request fails while IPVS did schedule them.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs

lab_topology 2
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 8080
done
lab_director_vip director "$LAB_VIP"
lab_must lab_ns director sysctl -qw net.ipv4.ip_forward=1 net.ipv4.vs.conntrack=1
lab_must lab_ns director ipvsadm -A -t "$LAB_VIP:80" -s rr
for rs in $LAB_SERVERS; do
    lab_must lab_ns director ipvsadm -a -t "$LAB_VIP:80" -r "$(lab_ip4 "$rs"):8080" -m
done

lab_client_loop client tcp "$LAB_VIP" 80 4
lab_check_eq "requests without an answer when nothing masquerades" "$LAB_LOOP_FAILED" 4
lab_check_ge "connections IPVS scheduled all the same" "$(lab_ipvs_conns director 4)" 4

lab_finish
