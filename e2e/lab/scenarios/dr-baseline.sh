#!/bin/sh
# dr-baseline — IPVS direct routing by hand (ipvsadm, ip, sysctl): both real servers answer, one MAC for the VIP
# lab-timeout: 240
#
# client, director, rs1, rs2 on br0. The director holds the VIP on eth0 and schedules rr with
# DR (-g); the real servers hold the VIP on lo with arp_ignore=1/arp_announce=2. Checks: TCP over
# IPv4 and IPv6 and UDP over IPv4 reach both real servers with no failed request, IPVS counted
# the connections (ipvsadm as witness), and exactly one MAC — the director's — answers ARP for
# the VIP.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs

lab_step "topology and real servers"
lab_topology 2
for rs in $LAB_SERVERS; do
    lab_rs_arp_sysctls "$rs"
    lab_rs_vip "$rs" lo "$LAB_VIP" "$LAB_VIP6"
    lab_must lab_http_server "$rs" 80
    lab_must lab_udp_server "$rs" 5300 "$LAB_VIP"
done

lab_step "director: VIP and IPVS services (rr, direct routing)"
lab_director_vip director "$LAB_VIP" "$LAB_VIP6"
lab_must lab_ns director ipvsadm -A -t "$LAB_VIP:80" -s rr
lab_must lab_ns director ipvsadm -A -u "$LAB_VIP:5300" -s rr
lab_must lab_ns director ipvsadm -A -t "[$LAB_VIP6]:80" -s rr
for rs in $LAB_SERVERS; do
    lab_must lab_ns director ipvsadm -a -t "$LAB_VIP:80" -r "$(lab_ip4 "$rs"):80" -g
    lab_must lab_ns director ipvsadm -a -u "$LAB_VIP:5300" -r "$(lab_ip4 "$rs"):5300" -g
    lab_must lab_ns director ipvsadm -a -t "[$LAB_VIP6]:80" -r "[$(lab_ip6 "$rs")]:80" -g
done
lab_ns director ipvsadm -Ln

lab_step "traffic"
lab_client_loop client tcp "$LAB_VIP" 80 20
lab_check_loop "TCP/IPv4 to $LAB_VIP:80" rs1 rs2
lab_client_loop client tcp "$LAB_VIP6" 80 10
lab_check_loop "TCP/IPv6 to [$LAB_VIP6]:80" rs1 rs2
lab_client_loop client udp "$LAB_VIP" 5300 10
lab_check_loop "UDP/IPv4 to $LAB_VIP:5300" rs1 rs2
lab_check_eq "connections IPVS scheduled (ipvsadm -Ln --stats)" "$(lab_ipvs_conns director 40)" 40

lab_step "ARP for the VIP"
lab_arp_probe client "$LAB_VIP"
lab_check_eq "MACs answering ARP for $LAB_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
