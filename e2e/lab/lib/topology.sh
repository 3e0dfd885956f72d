# e2e/lab/lib/topology.sh — network namespaces on one bridge, with known addresses.
#
# lab_topology SERVERS [DIRECTORS] creates, on bridge br0 in the VM's root namespace:
#   client                       10.100.0.10   fd00:100::10
#   director, director2, ...     10.100.0.2..9 fd00:100::2..9
#   rs1, rs2, ...                10.100.0.11.. fd00:100::11..
# each with one interface eth0 (a veth whose other end v-NAME is a bridge port), lo up, and the
# MAC 02:00:0a:64:00:HH (HH = last IPv4 octet in hex). Free for services: LAB_VIP
# 10.100.0.100 / LAB_VIP6 fd00:100::100, LAB_VIP2 10.100.0.101 / LAB_VIP6_2 fd00:100::101.
# Exported: LAB_CLIENT LAB_DIRECTORS LAB_SERVERS (namespace names), LAB_<NS>_IP / _IP6 / _MAC
# with NS upper-cased (LAB_RS1_IP, LAB_DIRECTOR_IP, ...). /run/lab/topology lists
# "ns ip4 ip6 mac" lines. lab_ip4 / lab_ip6 / lab_mac NS and lab_mac_owner MAC look them up.
# These names are what later scenarios (project agents as directors and real servers) use.

LAB_NET4=10.100.0
LAB_NET6=fd00:100:
LAB_VIP=10.100.0.100
LAB_VIP6=fd00:100::100
LAB_VIP2=10.100.0.101
LAB_VIP6_2=fd00:100::101
export LAB_NET4 LAB_NET6 LAB_VIP LAB_VIP6 LAB_VIP2 LAB_VIP6_2

# lab_node_add NS HOST — one namespace on br0 with host number HOST (last octet).
lab_node_add() {
    local ns=$1 host=$2 mac var
    mac=$(printf '02:00:0a:64:00:%02x' "$host")
    lab_must ip netns add "$ns"
    lab_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    lab_must ip -n "$ns" link set lo up
    lab_must ip link add "v-$ns" type veth peer name eth0 netns "$ns"
    lab_must ip link set "v-$ns" master br0 up
    lab_must ip -n "$ns" link set eth0 address "$mac" up
    lab_must ip -n "$ns" addr add "$LAB_NET4.$host/24" dev eth0
    lab_must ip -n "$ns" addr add "$LAB_NET6:$host/64" dev eth0 nodad
    echo "$ns $LAB_NET4.$host $LAB_NET6:$host $mac" >>"$LAB_RUN/topology"
    var=$(echo "$ns" | tr 'a-z-' 'A-Z_')
    eval "LAB_${var}_IP=$LAB_NET4.$host LAB_${var}_IP6=$LAB_NET6:$host LAB_${var}_MAC=$mac"
    export "LAB_${var}_IP" "LAB_${var}_IP6" "LAB_${var}_MAC"
}

# lab_topology SERVERS [DIRECTORS] — see the file header.
lab_topology() {
    local servers=${1:?lab_topology SERVERS [DIRECTORS]} directors=${2:-1} i name
    if [ "$directors" -lt 1 ] || [ "$directors" -gt 8 ] || [ "$servers" -lt 1 ] || [ "$servers" -gt 89 ]; then
        echo "lab: lab_topology wants 1..89 real servers and 1..8 directors"
        exit 1
    fi
    lab_must lab_modprobe veth bridge
    lab_must ip link add br0 type bridge forward_delay 0
    lab_must ip link set br0 up
    : >"$LAB_RUN/topology"
    lab_node_add client 10
    LAB_CLIENT=client LAB_DIRECTORS='' LAB_SERVERS=''
    i=1
    while [ "$i" -le "$directors" ]; do
        name=director
        [ "$i" -gt 1 ] && name=director$i
        lab_node_add "$name" $((1 + i))
        LAB_DIRECTORS="$LAB_DIRECTORS${LAB_DIRECTORS:+ }$name"
        i=$((i + 1))
    done
    i=1
    while [ "$i" -le "$servers" ]; do
        lab_node_add "rs$i" $((10 + i))
        LAB_SERVERS="$LAB_SERVERS${LAB_SERVERS:+ }rs$i"
        i=$((i + 1))
    done
    export LAB_CLIENT LAB_DIRECTORS LAB_SERVERS
    lab_say "topology: client $LAB_CLIENT_IP, directors: $LAB_DIRECTORS, real servers: $LAB_SERVERS on br0"
}

lab_topology_field() { awk -v k="$1" -v c="$2" '$c == k' "$LAB_RUN/topology"; }
lab_ip4() { lab_topology_field "$1" 1 | awk '{ print $2 }'; }
lab_ip6() { lab_topology_field "$1" 1 | awk '{ print $3 }'; }
lab_mac() { lab_topology_field "$1" 1 | awk '{ print $4 }'; }
# lab_mac_owner MAC — the namespace owning MAC, or "unknown".
lab_mac_owner() {
    local owner
    owner=$(lab_topology_field "$1" 4 | awk '{ print $1 }')
    echo "${owner:-unknown}"
}
