/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The traffic sender's programs (bpf::sender, anoncap-send).
 *
 * anoncap_send does not sit on the sending interface: user space runs it with BPF_PROG_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES) and `repeat` N. Each run takes the next frame of the frame
 * table (a sequence number modulo the table size, so the table is sent in order and looped),
 * resizes the live frame to it with bpf_xdp_adjust_tail, copies it in with
 * bpf_xdp_store_bytes and returns XDP_TX, which the kernel turns into a redirect out of the
 * interface named by the context's ingress_ifindex. The whole frame is rewritten on every run:
 * live frames are recycled pages whose bytes and bounds are not reset between runs.
 *
 * sink_drop / sink_pass are receivers for tests and benchmarks: they count
 * frames and bytes per CPU and drop or pass every frame.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Bytes of one frame-table slot (the longest frame the sender takes). */
#define SEND_SLOT_BYTES 2048
#define SEND_MIN_FRAME 14

struct send_slot {
	__u32 len;
	__u8 data[SEND_SLOT_BYTES];
};

/* The frame table; user space sizes it to the number of frames before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct send_slot);
} send_frames SEC(".maps");

/*
 * The sender's state. Only one thread runs the program (BPF_PROG_RUN from the sending thread,
 * runs one after the other on its CPU), so plain read-modify-write is enough.
 */
struct send_state {
	/* Sequence number of the next run (frame index = seq % n_frames). */
	__u64 seq;
	/* Frames in the table, written by user space. */
	__u64 n_frames;
	/* Runs that returned XDP_TX. */
	__u64 sent;
	/* Runs that failed (no table, bad length, helper failure) and returned XDP_ABORTED. */
	__u64 aborted;
	/* Runs on a frame that a real interface received (the dispatcher guard): passed. */
	__u64 passed;
	/* The interface the sender sends from (the context's ingress_ifindex of its runs). */
	__u32 ifindex;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct send_state);
} send_state SEC(".maps");

SEC("xdp")
int anoncap_send(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct send_state *st = bpf_map_lookup_elem(&send_state, &zero);
	struct send_slot *slot;
	__u64 n, seq;
	__u32 idx, len, cur;

	if (!st)
		return XDP_ABORTED;
	/*
	 * User space also attaches this program (generic mode) to the loopback interface, only
	 * to keep it in the kernel's XDP dispatcher: otherwise every BPF_PROG_RUN with repeat > 1
	 * adds it to the dispatcher and removes it again, two synchronize_rcu() per call. Frames
	 * that interface receives pass untouched.
	 */
	if (ctx->ingress_ifindex != st->ifindex) {
		__sync_fetch_and_add(&st->passed, 1);
		return XDP_PASS;
	}
	n = st->n_frames;
	if (n == 0)
		goto abort;
	seq = st->seq;
	st->seq = seq + 1;
	idx = (__u32)(seq % n);
	slot = bpf_map_lookup_elem(&send_frames, &idx);
	if (!slot)
		goto abort;
	len = slot->len;
	if (len < SEND_MIN_FRAME || len > SEND_SLOT_BYTES)
		goto abort;
	cur = (__u32)bpf_xdp_get_buff_len(ctx);
	if (cur != len && bpf_xdp_adjust_tail(ctx, (int)len - (int)cur))
		goto abort;
	if (bpf_xdp_store_bytes(ctx, 0, slot->data, len))
		goto abort;
	st->sent++;
	return XDP_TX;
abort:
	st->aborted++;
	return XDP_ABORTED;
}

/* Sink counters per CPU: slot 0 frames, slot 1 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sink_counters SEC(".maps");

static __always_inline void sink_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&sink_counters, &key);

	if (v)
		*v += 1;
	key = 1;
	v = bpf_map_lookup_elem(&sink_counters, &key);
	if (v)
		*v += bpf_xdp_get_buff_len(ctx);
}

SEC("xdp")
int sink_drop(struct xdp_md *ctx)
{
	sink_count(ctx);
	return XDP_DROP;
}

SEC("xdp")
int sink_pass(struct xdp_md *ctx)
{
	sink_count(ctx);
	return XDP_PASS;
}
