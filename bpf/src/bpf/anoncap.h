/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The body of anoncap's XDP program, shared by the generic object (anoncap.bpf.c) and the
 * device-bound one (anoncap_devbound.bpf.c, which defines ANONCAP_DEV_BOUND to read the
 * device RX timestamp).
 *
 * For a frame on a queue that has an AF_XDP socket: walk the L2-L4 headers within fixed
 * limits, apply the prefilter, cut the frame at the end of its headers (or at the
 * conservative snap length when the walk stops early), write struct anoncap_meta in front of
 * it and redirect it to the socket. Frames of queues without a socket pass untouched.
 */
#ifndef ANONCAP_PROG_H
#define ANONCAP_PROG_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "meta.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define ANONCAP_ETH_P_QINQ1 0x9100
#ifndef ETH_P_MPLS_UC
#define ETH_P_MPLS_UC 0x8847
#endif
#ifndef ETH_P_MPLS_MC
#define ETH_P_MPLS_MC 0x8848
#endif

/* IPv6 next-header values the walk steps over. */
#define ANONCAP_NH_HOPOPTS 0
#define ANONCAP_NH_ROUTING 43
#define ANONCAP_NH_FRAGMENT 44
#define ANONCAP_NH_AH 51
#define ANONCAP_NH_NONE 59
#define ANONCAP_NH_DSTOPTS 60

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct anoncap_config anoncap_cfg = {
	.snap_len = 256,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct anoncap_counters);
} counters SEC(".maps");

#ifdef ANONCAP_DEV_BOUND
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym;
#endif

/* What the header walk found. */
struct anoncap_walk {
	/* Offset of the end of the headers (valid when the walk completed). */
	__u32 end;
	__u32 flags;
	/* Outermost VLAN id, when ANONCAP_F_VLAN is set. */
	__u16 vlan;
	__u16 sport;
	__u16 dport;
	/* IP protocol (after IPv6 extension headers), when have_proto is set. */
	__u8 proto;
	__u8 have_proto;
	__u8 have_ports;
};

static __always_inline int anoncap_bit(const volatile __u32 *set, __u32 v, __u32 words)
{
	__u32 w = (v >> 5) & (words - 1);

	return (set[w] >> (v & 31)) & 1;
}

/*
 * Walks the headers. Returns 0 when it reached the end of an L4 header it fully understands
 * (w->end is that offset), -1 when it stopped early (the caller keeps the snap length).
 */
static __always_inline int anoncap_parse(void *data, void *data_end, struct anoncap_walk *w)
{
	void *pos = data;
	struct ethhdr *eth = pos;
	__u16 proto;
	__u8 l4;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	pos = eth + 1;

#pragma unroll
	for (i = 0; i < ANONCAP_MAX_VLAN; i++) {
		__be16 *tag = pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD) &&
		    proto != bpf_htons(ANONCAP_ETH_P_QINQ1))
			break;
		if ((void *)(tag + 2) > data_end)
			return -1;
		if (!(w->flags & ANONCAP_F_VLAN)) {
			w->flags |= ANONCAP_F_VLAN;
			w->vlan = bpf_ntohs(tag[0]) & 0x0fff;
		}
		proto = tag[1];
		pos = tag + 2;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD) ||
	    proto == bpf_htons(ANONCAP_ETH_P_QINQ1))
		return -1; /* deeper than ANONCAP_MAX_VLAN */

	if (proto == bpf_htons(ETH_P_MPLS_UC) || proto == bpf_htons(ETH_P_MPLS_MC)) {
		/* What follows a label stack (IP, an Ethernet pseudowire with or without control
		 * word) is decided by user space's strict checks: never cut here. */
		w->flags |= ANONCAP_F_MPLS;
		return -1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = pos;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return -1;
		w->flags |= ANONCAP_F_IPV4;
		if (ip->version != 4)
			return -1;
		ihl = ip->ihl;
		if (ihl < 5)
			return -1;
		if (bpf_ntohs(ip->tot_len) < ihl * 4)
			return -1;
		if (pos + ihl * 4 > data_end)
			return -1;
		w->proto = ip->protocol;
		w->have_proto = 1;
		pos += ihl * 4;
		if (ip->frag_off & bpf_htons(0x1fff)) {
			/* A non-first fragment carries no L4 header. */
			w->flags |= ANONCAP_F_FRAGMENT;
			w->end = pos - data;
			return 0;
		}
		l4 = ip->protocol;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = pos;
		__u8 nh;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		w->flags |= ANONCAP_F_IPV6;
		if (ip6->version != 6)
			return -1;
		nh = ip6->nexthdr;
		pos = ip6 + 1;

#pragma unroll
		for (i = 0; i < ANONCAP_MAX_IPV6_EXT; i++) {
			__u8 *ext = pos;
			__u32 len;

			if (nh != ANONCAP_NH_HOPOPTS && nh != ANONCAP_NH_ROUTING &&
			    nh != ANONCAP_NH_FRAGMENT && nh != ANONCAP_NH_AH &&
			    nh != ANONCAP_NH_DSTOPTS)
				break;
			if ((void *)(ext + 8) > data_end)
				return -1;
			if (nh == ANONCAP_NH_FRAGMENT) {
				len = 8;
				if ((ext[2] << 8 | ext[3]) & 0xfff8) {
					/* Non-first fragment: no L4 header follows. */
					w->proto = ext[0];
					w->have_proto = 1;
					w->flags |= ANONCAP_F_FRAGMENT;
					w->end = (pos + 8) - data;
					return 0;
				}
			} else if (nh == ANONCAP_NH_AH) {
				len = ((__u32)ext[1] + 2) * 4;
			} else {
				len = ((__u32)ext[1] + 1) * 8;
			}
			nh = ext[0];
			pos += len;
		}
		w->proto = nh;
		w->have_proto = 1;
		if (nh == ANONCAP_NH_HOPOPTS || nh == ANONCAP_NH_ROUTING ||
		    nh == ANONCAP_NH_FRAGMENT || nh == ANONCAP_NH_AH || nh == ANONCAP_NH_DSTOPTS) {
			w->have_proto = 0; /* the chain goes on beyond the walk limit */
			return -1;
		}
		if (nh == ANONCAP_NH_NONE) {
			if (pos > data_end)
				return -1;
			w->end = pos - data;
			return 0;
		}
		l4 = nh;
	} else {
		/* ARP and every other EtherType: user space decides. */
		return -1;
	}

	if (l4 == IPPROTO_TCP) {
		struct tcphdr *tcp = pos;
		__u32 doff;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		w->sport = bpf_ntohs(tcp->source);
		w->dport = bpf_ntohs(tcp->dest);
		w->have_ports = 1;
		doff = tcp->doff;
		if (doff < 5)
			return -1;
		if (pos + doff * 4 > data_end)
			return -1;
		w->flags |= ANONCAP_F_TCP;
		w->end = (pos + doff * 4) - data;
		return 0;
	}
	if (l4 == IPPROTO_UDP) {
		struct udphdr *udp = pos;

		if ((void *)(udp + 1) > data_end)
			return -1;
		w->sport = bpf_ntohs(udp->source);
		w->dport = bpf_ntohs(udp->dest);
		w->have_ports = 1;
		if (anoncap_bit(anoncap_cfg.reparse_udp_ports, w->sport, 2048) ||
		    anoncap_bit(anoncap_cfg.reparse_udp_ports, w->dport, 2048))
			return -1; /* a tunnel user space decodes */
		w->flags |= ANONCAP_F_UDP;
		w->end = (void *)(udp + 1) - data;
		return 0;
	}
	/* ICMP (quoted headers), tunnels (IPIP, GRE, ...), ESP, SCTP, anything else. */
	return -1;
}

/* 1: accept, 0: reject, -1: cannot decide (the walk stopped before the field). */
static __always_inline int anoncap_prefilter(const struct anoncap_walk *w)
{
	int undecided = 0;

	if (anoncap_cfg.filter_vlans) {
		if (!(w->flags & ANONCAP_F_VLAN))
			return 0;
		if (!anoncap_bit(anoncap_cfg.vlans, w->vlan, 128))
			return 0;
	}
	if (anoncap_cfg.filter_protocols) {
		if (!w->have_proto) {
			/* Non-IP frames never match; IP frames whose protocol lies beyond the walk
			 * are left to user space. */
			if (!(w->flags & (ANONCAP_F_IPV4 | ANONCAP_F_IPV6 | ANONCAP_F_MPLS)))
				return 0;
			undecided = 1;
		} else if (!anoncap_bit(anoncap_cfg.protocols, w->proto, 8)) {
			return 0;
		}
	}
	if (anoncap_cfg.filter_ports) {
		if (!w->have_ports) {
			if (w->have_proto && !(w->flags & ANONCAP_F_FRAGMENT) &&
			    w->proto != IPPROTO_TCP && w->proto != IPPROTO_UDP)
				return 0; /* a known protocol without ports */
			if (!(w->flags & (ANONCAP_F_IPV4 | ANONCAP_F_IPV6 | ANONCAP_F_MPLS)))
				return 0;
			undecided = 1;
		} else if (!anoncap_bit(anoncap_cfg.ports, w->sport, 2048) &&
			   !anoncap_bit(anoncap_cfg.ports, w->dport, 2048)) {
			return 0;
		}
	}
	return undecided ? -1 : 1;
}

static __always_inline int anoncap_xdp(struct xdp_md *ctx)
{
	__u64 now = bpf_ktime_get_tai_ns();
	__u32 queue = ctx->rx_queue_index;
	__u32 zero = 0;
	struct anoncap_counters *cnt;
	struct anoncap_walk w = {};
	struct anoncap_meta *meta;
	void *data, *data_end;
	__u32 wire_len, keep;
	int verdict, filt;

	cnt = bpf_map_lookup_elem(&counters, &zero);
	if (!cnt)
		return XDP_PASS;

	if (!anoncap_cfg.test_mode && !bpf_map_lookup_elem(&xsks_map, &queue)) {
		cnt->c[ANONCAP_C_PASS_NO_SOCKET]++;
		return XDP_PASS;
	}
	cnt->c[ANONCAP_C_SEEN]++;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	wire_len = bpf_xdp_get_buff_len(ctx);
	if (wire_len > (__u32)(data_end - data)) {
		w.flags |= ANONCAP_F_MULTI_BUFFER;
		cnt->c[ANONCAP_C_MULTI_BUFFER]++;
	}

	verdict = anoncap_parse(data, data_end, &w);

	filt = anoncap_prefilter(&w);
	if (filt == 0) {
		cnt->c[ANONCAP_C_PASS_FILTERED]++;
		return XDP_PASS;
	}
	if (filt < 0) {
		w.flags |= ANONCAP_F_FILTER_UNDECIDED;
		cnt->c[ANONCAP_C_FILTER_UNDECIDED]++;
	}

	if (verdict == 0) {
		keep = w.end;
	} else {
		w.flags |= ANONCAP_F_REPARSE;
		cnt->c[ANONCAP_C_UNPARSED]++;
		keep = anoncap_cfg.snap_len;
	}
	if (keep > wire_len)
		keep = wire_len;

	/* Reserve the metadata first: it can fail without side effects. */
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct anoncap_meta))) {
		cnt->c[ANONCAP_C_META_FAILED]++;
		return XDP_PASS;
	}
	if (keep < wire_len && keep >= ETH_HLEN) {
		if (bpf_xdp_adjust_tail(ctx, (int)keep - (int)wire_len) == 0) {
			w.flags |= ANONCAP_F_TRUNCATED;
			cnt->c[ANONCAP_C_TRUNCATED]++;
		} else {
			w.flags |= ANONCAP_F_REPARSE;
			cnt->c[ANONCAP_C_TAIL_FAILED]++;
			keep = wire_len;
		}
	} else {
		keep = wire_len;
	}

#ifdef ANONCAP_DEV_BOUND
	{
		__u64 hw = 0;

		if (bpf_xdp_metadata_rx_timestamp(ctx, &hw) == 0 && hw != 0) {
			now = hw;
			w.flags |= ANONCAP_F_HW_TIMESTAMP;
			cnt->c[ANONCAP_C_HW_TIMESTAMP]++;
		}
	}
#endif

	data = (void *)(long)ctx->data;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > data) {
		/* Cannot happen after a successful adjust_meta; keeps the verifier satisfied. */
		cnt->c[ANONCAP_C_META_FAILED]++;
		return XDP_PASS;
	}
	meta->tai_ns = now;
	meta->wire_len = wire_len;
	meta->flags = w.flags;
	meta->hdr_len = keep;
	meta->rx_queue = queue;

	if (anoncap_cfg.test_mode)
		return XDP_TX;

	cnt->c[ANONCAP_C_REDIRECTED]++;
	if (bpf_redirect_map(&xsks_map, queue, XDP_PASS) != XDP_REDIRECT) {
		cnt->c[ANONCAP_C_REDIRECT_MISSED]++;
		/* The frame is already cut: never hand a truncated frame to the stack. */
		return XDP_DROP;
	}
	return XDP_REDIRECT;
}

#endif /* ANONCAP_PROG_H */
