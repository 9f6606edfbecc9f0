#!/usr/bin/env bash
# Live capture benchmark on a veth pair between two namespaces (this script creates and
# removes them; nothing leaves the pair): anoncap capture vs tcpdump -s 128 -w FILE on the same
# interface, at fixed offered rates, then anoncap alone at top speed.
#
# Usage: benches/live/veth-vs-tcpdump.sh [ANONCAP_BINARY] [RUN_DIR]
#   ANONCAP_BINARY defaults to target/release/anoncap (cargo build --release -p tools)
#   RUN_DIR        defaults to benches/live/runs/<date>-<host>; results.csv and notes go there
#
# Layout (2 cores): the capture's receive thread on core 0, its anonymiser on core 1; the
# sender (tcpreplay) on core 1. IPv6 is off on both links. Both captures write to the same
# disk (RUN_DIR). CPU is system-wide, from /proc/stat (user+nice+system+irq+softirq of all
# cores), in CPU seconds per million packets offered.
set -euo pipefail
BIN=${1:-target/release/anoncap}
RUN=${2:-benches/live/runs/$(date +%Y%m%d)-$(hostname)}
RATES=${RATES:-"200000 500000 1000000"}
COUNT=${COUNT:-1000000}
TRACE64=$RUN/frames64.pcap
MIXED=${MIXED:-testdata/traces/zeek-echo-connections.pcap}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
CAP=abc$$-cap SND=abc$$-snd IFC=abc$$c IFS=abc$$s

cleanup() {
    ip netns pids "$CAP" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$CAP" 2>/dev/null || true
    ip netns del "$SND" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$CAP"; ip netns add "$SND"
for ns in "$CAP" "$SND"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$CAP" link add "$IFC" numrxqueues 1 numtxqueues 1 type veth peer name "$IFS" netns "$SND"
ip -n "$CAP" link set "$IFC" up; ip -n "$SND" link set "$IFS" up

# 64-byte frames (60 on the wire without FCS): one UDP flow, written with python3.
python3 - "$TRACE64" <<'PY'
import struct, sys
frame = bytes.fromhex("020000000002" "020000000001" "0800"
    "4500002e00004000401100" "00" "c0000201" "c0000202" "30393039001a0000")
ip = bytearray(frame[14:34])
c = sum(struct.unpack("!10H", bytes(ip)))
c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
ip[10:12] = struct.pack("!H", ~c & 0xffff)
frame = frame[:14] + bytes(ip) + frame[34:]
frame = frame + bytes(60 - len(frame))
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(10000):
        f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(frame), len(frame)))
        f.write(frame)
PY
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/bench.key"; chmod 600 "$RUN/bench.key"

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)

# One measurement: TOOL (anoncap|tcpdump), TRACE, RATE (pps or "top").
measure() {
    local tool=$1 trace=$2 rate=$3 out=$RUN/out-$tool
    rm -rf "$out"; mkdir -p "$out"
    local log=$RUN/$tool-$(basename "$trace")-$rate.log
    if [ "$tool" = anoncap ]; then
        ip netns exec "$CAP" "$BIN" capture --iface "$IFC" --key "$RUN/bench.key" --out "$out" \
            --cores 0,1 2>"$log" & 
    else
        ip netns exec "$CAP" taskset -c 0 tcpdump -n -i "$IFC" -s 128 -w "$out/tcpdump.pcap" 2>"$log" &
    fi
    local pid=$!
    sleep 2
    local loops=$(( COUNT / $(capinfos -c -M "$trace" | awk '/Number of packets/{print $NF}') + 1 ))
    local speed=(--topspeed); [ "$rate" != top ] && speed=(--pps "$rate")
    local t0; t0=$(cpu_ticks)
    local sent
    sent=$(ip netns exec "$SND" taskset -c 1 tcpreplay -i "$IFS" "${speed[@]}" --loop "$loops" --limit "$COUNT" "$trace" 2>&1 |
        awk '/Successful packets:/{print $3}')
    sleep 1
    local t1; t1=$(cpu_ticks)
    kill -INT "$pid"; wait "$pid" || true
    local captured lost
    if [ "$tool" = anoncap ]; then
        captured=$(awk '/packets captured/{print $1}' "$log")
        lost=$(awk '/packets dropped by/{s+=$1} END{print s+0}' "$log")
    else
        captured=$(awk '/packets captured/{print $1}' "$log")
        lost=$(awk '/packets dropped by/{s+=$1} END{print s+0}' "$log")
    fi
    local cpu; cpu=$(echo "scale=3; ($t1 - $t0) / $hz / ($sent / 1000000)" | bc)
    echo "$tool,$(basename "$trace"),$rate,$sent,$captured,$lost,$cpu" | tee -a "$RUN/results.csv"
}

echo "tool,trace,offered_pps,sent,captured,lost,cpu_s_per_mpkt" > "$RUN/results.csv"
{
    echo "host: $(hostname), $(nproc) cores, kernel $(uname -r), $(date -u +%FT%TZ)"
    echo "anoncap: $("$BIN" --version)"; tcpdump --version 2>&1 | head -1; tcpreplay -V 2>&1 | head -1
} > "$RUN/notes.txt"
for trace in "$TRACE64" "$MIXED"; do
    for rate in $RATES; do
        measure tcpdump "$trace" "$rate"
        measure anoncap "$trace" "$rate"
    done
    measure anoncap "$trace" top
done
echo "results in $RUN/results.csv"
