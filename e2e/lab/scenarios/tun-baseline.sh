#!/bin/sh
# tun-baseline — IPVS IP-IP tunnelling by hand: VIP on the real servers' tunl0, rp_filter relaxed
# lab-timeout: 180
#
# The director encapsulates (-i) to each real server's own address; real servers decapsulate on
# tunl0, which holds the VIP, and answer the client directly from the VIP. The ARP sysctls keep
# the real servers from answering ARP for the VIP they hold.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs ipip

lab_topology 2
for rs in $LAB_SERVERS; do
    lab_rs_arp_sysctls "$rs"
    lab_rs_tunnel "$rs" "$LAB_VIP"
    lab_must lab_http_server "$rs" 80
done
lab_director_vip director "$LAB_VIP"
lab_must lab_ns director ipvsadm -A -t "$LAB_VIP:80" -s rr
for rs in $LAB_SERVERS; do
    lab_must lab_ns director ipvsadm -a -t "$LAB_VIP:80" -r "$(lab_ip4 "$rs"):80" -i
done
lab_ns director ipvsadm -Ln

lab_client_loop client tcp "$LAB_VIP" 80 20
lab_check_loop "TCP/IPv4 to $LAB_VIP:80 through IP-IP" rs1 rs2
for rs in $LAB_SERVERS; do
    lab_check_ge "packets decapsulated on $rs's tunl0" \
        "$(lab_ns "$rs" cat /sys/class/net/tunl0/statistics/rx_packets)" 1
done
lab_arp_probe client "$LAB_VIP"
lab_check_eq "MACs answering ARP for $LAB_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
