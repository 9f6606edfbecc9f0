#!/usr/bin/env bash
# Live capture benchmark on a veth pair between two namespaces (this script creates and
# removes them; nothing leaves the pair):
#  (a) anoncap capture vs tcpdump -s 128 -w FILE on the same interface (tcpdump with no XDP
#      program attached), both writing to the same disk, at fixed offered rates, with 64-byte
#      frames and a real mixed trace: first with tcpreplay --pps as the sender (frames reach
#      the receiving veth as skbs, which veth copies into pages for XDP), then with our sender
#      at the same rates (frames arrive as XDP frames, as from a NIC's driver; GRO is turned
#      on on the capture link, without which veth refuses XDP frames when no program is
#      attached: none of these frames are merged by it, which the counts show);
#  (b) anoncap alone with our sender (anoncap-send, the XDP live-frames transmit path, no
#      veth push-back) at SENDER_RATES and at the highest rate it reaches.
#
# Usage: benches/live/veth-vs-tcpdump.sh [BIN_DIR] [RUN_DIR]
#   BIN_DIR  holds anoncap and anoncap-send (default target/release; cargo build --release -p tools)
#   RUN_DIR  defaults to benches/live/runs/<date>-<host>; results.csv and notes.txt go there
# Environment: RATES (default "200000 500000 1000000"), COUNT (frames per measurement,
# default 1000000), TOP_SECONDS (length of each run of our sender, default 5), SENDER_RATES
# (rates of our sender before its top speed, default "1000000 1500000 2000000"), MIXED (the trace),
# ANONCAP_ARGS (extra flags for anoncap capture, e.g. "--xdp-mode generic").
#
# Each rate is also measured with no capture at all ("none": the sender and the kernel's own
# handling of the frames), the floor both captures add to.
#
# Layout (2 cores): the capture on core 0 (anoncap with --anon-threads 0: its receive thread
# anonymises too, the layout docs/probe-setup.md gives for a probe without a core per stage;
# or tcpdump);
# the sender on core 1, where veth also runs the receiving side's XDP and softirq work (veth
# processes the receiver's frames on the sender's CPU). IPv6 is off on both links. CPU is
# system-wide, from /proc/stat (user+nice+system+irq+softirq of all cores), over the send
# interval plus one second, in CPU seconds per million frames sent.
set -euo pipefail
BIN_DIR=${1:-target/release}
RUN=${2:-benches/live/runs/$(date +%Y%m%d)-$(hostname)}
RATES=${RATES:-"200000 500000 1000000"}
COUNT=${COUNT:-1000000}
TOP_SECONDS=${TOP_SECONDS:-5}
SENDER_RATES=${SENDER_RATES:-"1000000 1500000 2000000"}
MIXED=${MIXED:-testdata/traces/zeek-echo-connections.pcap}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
BIN_DIR=$(cd "$BIN_DIR" && pwd)
MIXED=$(cd "$(dirname "$MIXED")" && pwd)/$(basename "$MIXED")
ANONCAP=$BIN_DIR/anoncap SENDER=$BIN_DIR/anoncap-send
TRACE64=$RUN/frames64.pcap
CAP=abc$$-cap SND=abc$$-snd IF_CAP=abc$$c IF_SND=abc$$s

# shellcheck source=benches/live/lib.sh
. "$(dirname "$0")/lib.sh"
trap 'remove_netns "$CAP" "$SND"' EXIT INT TERM
make_veth_pair "$CAP" "$SND" "$IF_CAP" "$IF_SND"

write_frames64 "$TRACE64"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/bench.key"; chmod 600 "$RUN/bench.key"

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)
# CPU seconds per million frames: per_mpkt TICKS FRAMES.
per_mpkt() { awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN{printf "%.3f", t / hz / (n / 1e6)}'; }
count_of() { awk '/^Number of packets/{print $NF}' <(capinfos -c -M "$1"); }

# Starts a capture by TOOL (anoncap|tcpdump) into $RUN/out-TOOL, logging to $1.
start_capture() {
    local tool=$1 log=$2
    local out=$RUN/out-$tool
    rm -rf "$out"; mkdir -p "$out"
    CAP_PID=
    if [ "$tool" = none ]; then
        return
    elif [ "$tool" = anoncap ]; then
        ip netns exec "$CAP" "$ANONCAP" capture --iface "$IF_CAP" --key "$RUN/bench.key" \
            --out "$out" --cores 0 --anon-threads 0 ${ANONCAP_ARGS:-} 2>"$log" &
    else
        ip netns exec "$CAP" taskset -c 0 tcpdump -n -i "$IF_CAP" -s 128 -w "$out/tcpdump.pcap" 2>"$log" &
    fi
    CAP_PID=$!
    sleep 2
    PROC0=$(proc_ticks)
}

# CPU ticks the capture process itself used so far (all its threads, user + system).
proc_ticks() { awk '{print $14 + $15}' "/proc/$CAP_PID/stat" 2>/dev/null || echo 0; }

# Stops the capture and sets CL to "captured,lost" from its summary (not in a subshell: it
# must wait for the capture to print its summary).
stop_capture() {
    local log=$1
    if [ -z "$CAP_PID" ]; then
        CL=",,"
        return
    fi
    sleep 1
    local own=$(( $(proc_ticks) - PROC0 ))
    kill -INT "$CAP_PID"; wait "$CAP_PID" || true
    local captured lost
    captured=$(awk '/packets captured/{print $1}' "$log")
    lost=$(awk '/packets dropped by/{s+=$1} END{print s+0}' "$log")
    CL="$captured,$lost,$own"
}

# (a) One measurement: TOOL, TRACE, RATE (pps), tcpreplay as the sender.
measure_replay() {
    local tool=$1 trace=$2 rate=$3
    local log=$RUN/$tool-$(basename "$trace" .pcap)-$rate.log
    start_capture "$tool" "$log"
    local loops=$(( COUNT / $(count_of "$trace") + 1 ))
    local t0 t1 s0 s1 sent achieved
    t0=$(cpu_ticks); s0=$(date +%s.%N)
    sent=$(ip netns exec "$SND" taskset -c 1 tcpreplay -i "$IF_SND" --pps "$rate" --loop "$loops" \
        --limit "$COUNT" "$trace" 2>&1 | awk '/Successful packets:/{print $3}')
    s1=$(date +%s.%N)
    sleep 1
    t1=$(cpu_ticks)
    stop_capture "$log"
    achieved=$(awk -v n="$sent" -v a="$s0" -v b="$s1" 'BEGIN{printf "%.0f", n / (b - a)}')
    local cpu; cpu=$(per_mpkt $((t1 - t0)) "$sent")
    echo "a,$tool,tcpreplay,$(basename "$trace"),$rate,$achieved,$sent,$CL,$cpu" | tee -a "$RUN/results.csv"
}

# (a) with our sender, and (b): TOOL (none|tcpdump|anoncap), our sender for TOP_SECONDS at
# RATE (pps, or "top"): SOURCE is --synthetic 64 or --trace FILE. "sent" is what the sender
# offered to the veth pair (its "offered": the sending veth's xdp_xmit + xdp_xmit_errors
# counters), which the capture must account for as captured or lost.
measure_sender() {
    local tool=$1 label=$2 rate=$3; shift 3
    local log=$RUN/$PART-$tool-sender-$label-$rate.log
    local limit=(); [ "$rate" != top ] && limit=(--pps "$rate")
    start_capture "$tool" "$log"
    local t0 t1 json sent achieved
    t0=$(cpu_ticks)
    json=$(ip netns exec "$SND" taskset -c 1 "$SENDER" --iface "$IF_SND" "$@" "${limit[@]}" \
        --duration "${TOP_SECONDS}s" --json)
    sleep 1
    t1=$(cpu_ticks)
    echo "$json" > "$RUN/$PART-sender-$tool-$label-$rate.json"
    sent=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["offered"])' "$json")
    achieved=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["offered"] / d["elapsed_s"]))' "$json")
    stop_capture "$log"
    local cpu; cpu=$(per_mpkt $((t1 - t0)) "$sent")
    echo "$PART,$tool,anoncap-send,$label,$rate,$achieved,$sent,$CL,$cpu" | tee -a "$RUN/results.csv"
}

# own_ticks: CPU ticks (1/CLK_TCK s) of the capture process itself, from /proc/PID/stat:
# robust to other load on the machine, but without the kernel's softirq work for it.
echo "part,tool,sender,trace,offered_pps,achieved_pps,sent,captured,lost,own_ticks,cpu_s_per_mpkt" > "$RUN/results.csv"
{
    echo "host: $(hostname), $(nproc) cores, kernel $(uname -r), $(date -u +%FT%TZ)"
    grep -m1 'model name' /proc/cpuinfo
    echo "anoncap: $("$ANONCAP" --version)"; tcpdump --version 2>&1 | head -1; tcpreplay -V 2>&1 | head -1
    echo "COUNT=$COUNT RATES=$RATES TOP_SECONDS=$TOP_SECONDS"
} > "$RUN/notes.txt"
for trace in "$TRACE64" "$MIXED"; do
    for rate in $RATES; do
        measure_replay none "$trace" "$rate"
        measure_replay tcpdump "$trace" "$rate"
        measure_replay anoncap "$trace" "$rate"
    done
done
if [ -x "$SENDER" ]; then
    ip netns exec "$CAP" ethtool -K "$IF_CAP" gro on >/dev/null
    PART=a
    for rate in $RATES; do
        for tool in none tcpdump anoncap; do
            measure_sender "$tool" synthetic64 "$rate" --synthetic 64
            measure_sender "$tool" "$(basename "$MIXED" .pcap)" "$rate" --trace "$MIXED"
        done
    done
    PART=b
    for rate in $SENDER_RATES top; do
        measure_sender anoncap synthetic64 "$rate" --synthetic 64
        measure_sender anoncap "$(basename "$MIXED" .pcap)" "$rate" --trace "$MIXED"
    done
else
    echo "no $SENDER: our sender's parts skipped (cargo build --release -p tools)" | tee -a "$RUN/notes.txt"
fi
echo "results in $RUN/results.csv"
