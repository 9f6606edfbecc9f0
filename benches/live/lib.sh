# Shared by the live benchmarks (sourced, not run): the one-queue veth pair between two
# namespaces and the 64-byte trace.

# Creates namespaces CAP and SND joined by a one-queue veth pair IF_CAP (in CAP) and IF_SND
# (in SND), IPv6 off on both sides, links up.
make_veth_pair() {
    local cap=$1 snd=$2 if_cap=$3 if_snd=$4 ns
    ip netns add "$cap"; ip netns add "$snd"
    for ns in "$cap" "$snd"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$cap" link add "$if_cap" numrxqueues 1 numtxqueues 1 type veth \
        peer name "$if_snd" netns "$snd" numrxqueues 1 numtxqueues 1
    ip -n "$cap" link set "$if_cap" up; ip -n "$snd" link set "$if_snd" up
}

# Kills what runs in the namespaces given and removes them (missing ones are skipped).
remove_netns() {
    local ns
    for ns in "$@"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Writes FILE: 20,000 64-byte frames (60 on the wire without FCS) for tcpreplay, UDP between
# 4096 hosts of the benchmarking range 198.18.0.0/15, so the anonymiser sees many addresses.
write_frames64() {
    python3 - "$1" <<'PY'
import struct, sys
def csum(b):
    c = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while c >> 16:
        c = (c & 0xffff) + (c >> 16)
    return ~c & 0xffff
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(20000):
        h = (i * 2654435761) & 0xfff
        src = bytes([198, 18, h >> 8, h & 0xff])
        dst = bytes([198, 19, (i >> 8) & 0x0f, i & 0xff])
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, i & 0xffff, 0x4000, 64, 17, 0, src, dst))
        ip[10:12] = struct.pack("!H", csum(bytes(ip)))
        udp = struct.pack("!HHHH", 1024 + (i % 4096), 9, 26, 0) + bytes(18)
        frame = bytes.fromhex("020000000002" "020000000001" "0800") + bytes(ip) + udp
        f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(frame), len(frame)))
        f.write(frame)
PY
}
