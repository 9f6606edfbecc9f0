#!/usr/bin/env bash
# Interleaved A/B rounds of the live capture's CPU cost: two anoncap builds and tcpdump -s 128,
# one after the other in each round, on a one-queue veth pair between two namespaces that this
# script creates and removes (nothing leaves the pair). On a shared machine the speed moves
# more between runs than most changes do; rounds that alternate A, B and tcpdump measure a
# change against a baseline taken at the same time.
#
# Usage: benches/live/ab-rounds.sh BIN_A BIN_B [ROUNDS]
#   BIN_A, BIN_B  directories holding anoncap and anoncap-send (e.g. two target/release copies)
# Environment: RATE (pps, default 500000), SECONDS_PER_RUN (default 5), ARGS_A / ARGS_B (extra
# anoncap capture flags, default "--cores 0 --anon-threads 0"), LOADS (default "sender
# replay": our sender with 64-byte synthetic frames, and tcpreplay with the benchmark's
# 64-byte trace).
#
# Prints one line per run: round, load, tool, own CPU ticks (the capture process, /proc/PID/stat,
# 1/CLK_TCK s), system CPU ticks (/proc/stat, both cores), frames sent, captured, lost.
set -euo pipefail
BIN_A=$(cd "$1" && pwd) BIN_B=$(cd "$2" && pwd) ROUNDS=${3:-4}
RATE=${RATE:-500000} SECS=${SECONDS_PER_RUN:-5}
ARGS_A=${ARGS_A:---cores 0 --anon-threads 0} ARGS_B=${ARGS_B:---cores 0 --anon-threads 0}
LOADS=${LOADS:-sender replay}
WORK=$(mktemp -d)
CAP=abr$$-cap SND=abr$$-snd IF_CAP=abr$$c IF_SND=abr$$s

# shellcheck source=benches/live/lib.sh
. "$(dirname "$0")/lib.sh"
trap 'remove_netns "$CAP" "$SND"; rm -rf "$WORK"' EXIT INT TERM
write_frames64 "$WORK/frames64.pcap"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/key"; chmod 600 "$WORK/key"

sys_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
own_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# One run: LOAD TOOL BIN ARGS...
run() {
    local load=$1 tool=$2 bin=$3; shift 3
    make_veth_pair "$CAP" "$SND" "$IF_CAP" "$IF_SND"
    # veth takes our sender's XDP frames only with an XDP program or GRO on the receiver.
    [ "$tool" = tcpdump ] && ip netns exec "$CAP" ethtool -K "$IF_CAP" gro on >/dev/null
    rm -rf "$WORK/out"; mkdir -p "$WORK/out"
    if [ "$tool" = tcpdump ]; then
        ip netns exec "$CAP" taskset -c 0 tcpdump -n -i "$IF_CAP" -s 128 -w "$WORK/out/t.pcap" 2>"$WORK/log" &
    else
        ip netns exec "$CAP" "$bin/anoncap" capture --iface "$IF_CAP" --key "$WORK/key" \
            --out "$WORK/out" "$@" 2>"$WORK/log" &
    fi
    local pid=$!
    sleep 2
    local s0 o0 sent
    s0=$(sys_ticks); o0=$(own_ticks "$pid")
    if [ "$load" = sender ]; then
        sent=$(ip netns exec "$SND" taskset -c 1 "$bin/anoncap-send" --iface "$IF_SND" --synthetic 64 \
            --pps "$RATE" --duration "${SECS}s" --json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["offered"])')
    else
        sent=$(ip netns exec "$SND" taskset -c 1 tcpreplay -i "$IF_SND" --pps "$RATE" --loop 0 \
            --limit $((RATE * SECS)) "$WORK/frames64.pcap" 2>&1 | awk '/Successful packets:/{print $3}')
    fi
    sleep 1
    local s1 o1
    s1=$(sys_ticks); o1=$(own_ticks "$pid")
    kill -INT "$pid"; wait "$pid" || true
    local captured lost
    captured=$(awk '/packets captured/{print $1}' "$WORK/log")
    lost=$(awk '/packets dropped by/{s+=$1} END{print s+0}' "$WORK/log")
    remove_netns "$CAP" "$SND"
    echo "$ROUND,$load,$LABEL,$((o1 - o0)),$((s1 - s0)),$sent,$captured,$lost"
}

echo "round,load,tool,own_ticks,system_ticks,sent,captured,lost"
for ROUND in $(seq 1 "$ROUNDS"); do
    for load in $LOADS; do
        # shellcheck disable=SC2086
        LABEL=A run "$load" anoncap "$BIN_A" $ARGS_A
        # shellcheck disable=SC2086
        LABEL=B run "$load" anoncap "$BIN_B" $ARGS_B
        LABEL=tcpdump run "$load" tcpdump "$BIN_A"
    done
done
