#!/bin/sh
# coexist-foreign — lvs-agent next to kube-proxy's IPVS: a VirtualServer on the key of a foreign IPVS service (on a kube-ipvs0 dummy) is refused with reason ForeignService; the foreign service and its address survive three resyncs byte for byte although the agent serves another port of that address from lvs0; an unreadable `ipvsadm -p -M 255.0.255.0` entry does not stop the agent from programming (and serving) its own services
# lab-timeout: 150
#
# On the director, before any agent runs, by hand as kube-proxy's IPVS mode does it: a dummy
# device kube-ipvs0 holding 10.100.0.101, and an IPVS service TCP 10.100.0.101:80 (wlc, one NAT
# destination); and, as someone's `ipvsadm -p -M 255.0.255.0`, a persistent service whose
# netmask is not a prefix (lvs-operator has no model for it). Then agents on the director and
# both real servers (resync every 2 s) run examples/virtualserver.yaml (web, 10.100.0.100:80),
# manifests/second-service.yaml (lab/web2, 10.100.0.101:80 — kube-proxy's key) and
# manifests/coexist-foreign.yaml (lab/web2-alt, 10.100.0.101:81: ours, so 10.100.0.101 goes on
# lvs0 too — an agent owning services by address would then take kube-proxy's over).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP
FOREIGN=$LAB_VIP2
ODD=10.100.0.150
STATUS=$LAB_RUN/agent.director.status

lab_step "topology, web servers; kube-proxy's service and an ipvsadm -M 255.0.255.0 one by hand"
lab_topology 2
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 80
    lab_must lab_http_server "$rs" 81
done
lab_must lab_modprobe ip_vs ip_vs_wlc ip_vs_rr dummy
lab_must lab_ns director /sbin/ip link add kube-ipvs0 type dummy
lab_must lab_ns director /sbin/ip addr add "$FOREIGN/32" dev kube-ipvs0
lab_must lab_ns director ipvsadm -A -t "$FOREIGN:80" -s wlc
lab_must lab_ns director ipvsadm -a -t "$FOREIGN:80" -r 10.100.0.12:8080 -m -w 3
lab_must lab_ns director ipvsadm -A -t "$ODD:443" -s rr -p 300 -M 255.0.255.0

# foreign_state — what must never change: both foreign services with their destinations, and
# kube-ipvs0's addresses.
foreign_state() {
    lab_ns director ipvsadm -Ln -t "$FOREIGN:80"
    lab_ns director ipvsadm -Ln -t "$ODD:443"
    lab_ns director /sbin/ip -o addr show dev kube-ipvs0
}
foreign_state >"$LAB_RUN/foreign.before"
lab_say "foreign state before:"
sed 's/^/    /' "$LAB_RUN/foreign.before"

lab_step "agents on the director and the real servers: web (ours) and lab/web2 (kube-proxy's key)"
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" web.yaml /lab/examples/virtualserver.yaml
lab_must lab_manifest_put "$DIR" web2.yaml /lab/manifests/second-service.yaml
lab_must lab_manifest_put "$DIR" web2-alt.yaml /lab/manifests/coexist-foreign.yaml
# shellcheck disable=SC2034 # read by lab_agent_start
LAB_AGENT_ARGS="--resync-seconds 2"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 2 $LAB_SERVERS
own_programmed() {
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 rr' | grep -c 'Route' | grep -qx 2 &&
        ipvsadm -Ln | grep -A3 'TCP  $FOREIGN:81 rr' | grep -c 'Route' | grep -qx 2"
}
lab_must lab_wait 20 own_programmed
lab_must lab_wait 10 grep -q 'ForeignService' "$STATUS"
lab_say "director's refusal: $(grep -o '"lab/web2: [^"]*\[ForeignService\]"' "$STATUS")"

lab_step "three resyncs"
i=1
while [ $i -le 3 ]; do
    lab_agent_mark director
    mark=$(cat "$LAB_RUN/agent.director.mark")
    lab_must lab_wait 10 sh -c "[ \"\$(stat -c %y '$STATUS')\" != '$mark' ]"
    i=$((i + 1))
done
lab_must lab_running director agent
foreign_state >"$LAB_RUN/foreign.after"

lab_step "the refusal, the foreign state untouched, our service serving"
lab_check "web2 refused with reason ForeignService, naming the foreign service" \
    grep -q "lab/web2: an IPVS service TCP $FOREIGN:80 exists that lvs-operator did not create; left alone \[ForeignService\]" "$STATUS"
lab_check "the node status says ForeignService for lab/web2" \
    grep -q '"reason": *"ForeignService"' "$STATUS"
lab_check "ipvsadm -Ln and ip addr of the foreign services unchanged after three resyncs" \
    cmp -s "$LAB_RUN/foreign.before" "$LAB_RUN/foreign.after"
lab_check "kube-proxy's service still wlc with its one NAT destination" \
    lab_ns director sh -c "ipvsadm -Ln -t $FOREIGN:80 | grep -q 'TCP  $FOREIGN:80 wlc' &&
        ipvsadm -Ln -t $FOREIGN:80 | grep -q '10.100.0.12:8080 *Masq *3' &&
        [ \$(ipvsadm -Ln -t $FOREIGN:80 | grep -c -- '->') = 2 ]"
lab_check "$FOREIGN is on lvs0 too, for our :81" \
    lab_ns director sh -c "/sbin/ip -4 addr show dev lvs0 | grep -q '$FOREIGN/32'"
lab_check "the unreadable entry was logged once, not at every resync" \
    sh -c "[ \$(grep -c 'cannot read is skipped' /run/lab/log/director.agent.log) = 1 ]"
lab_fast_loop client "$VIP" 80 20
lab_check_loop "our own service: TCP to $VIP:80" rs1 rs2
lab_fast_loop client "$FOREIGN" 81 20
lab_check_loop "our own service beside kube-proxy's: TCP to $FOREIGN:81" rs1 rs2
if ! cmp -s "$LAB_RUN/foreign.before" "$LAB_RUN/foreign.after"; then
    lab_say "foreign state after:"
    sed 's/^/    /' "$LAB_RUN/foreign.after"
fi
lab_finish
