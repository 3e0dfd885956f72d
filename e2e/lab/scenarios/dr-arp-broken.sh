#!/bin/sh
# dr-arp-broken — negative test: DR real servers without the ARP sysctls answer ARP for the VIP (detected = pass)
# lab-timeout: 180
#
# Same as dr-baseline but the real servers keep the kernel's defaults (arp_ignore=0,
# arp_announce=0) with the VIP on lo: the ARP problem. The scenario passes when the probe sees
# it: more than one MAC answers ARP for the VIP, a real server's among them.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs

lab_topology 2
for rs in $LAB_SERVERS; do
    lab_rs_vip "$rs" lo "$LAB_VIP"
    lab_must lab_http_server "$rs" 80
done
lab_director_vip director "$LAB_VIP"
lab_must lab_ns director ipvsadm -A -t "$LAB_VIP:80" -s rr
for rs in $LAB_SERVERS; do
    lab_must lab_ns director ipvsadm -a -t "$LAB_VIP:80" -r "$(lab_ip4 "$rs"):80" -g
done

lab_arp_probe client "$LAB_VIP"
lab_check_ge "MACs answering ARP for $LAB_VIP without arp_ignore/arp_announce ($(lab_arp_owners))" \
    "$LAB_ARP_COUNT" 2
case " $LAB_ARP_MACS " in
*" $LAB_RS1_MAC "* | *" $LAB_RS2_MAC "*) echo "ok   - a real server answers ARP for the VIP" ;;
*) lab_fail "no real server's MAC among the ARP answers for $LAB_VIP: $(lab_arp_owners)" ;;
esac

lab_finish
