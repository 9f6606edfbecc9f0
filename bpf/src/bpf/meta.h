/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Types shared by the XDP program and its Rust loader (bpf/src/abi.rs mirrors every struct
 * here with #[repr(C)] and const size assertions: change both together).
 */
#ifndef ANONCAP_META_H
#define ANONCAP_META_H

#include <linux/types.h>

/*
 * The block the program writes in front of each redirected frame with bpf_xdp_adjust_meta.
 * 24 bytes: a multiple of 4, as adjust_meta requires, and at most 32.
 */
struct anoncap_meta {
	/* Kernel CLOCK_TAI at the XDP hook (bpf_ktime_get_tai_ns), or the device RX timestamp
	 * when ANONCAP_F_HW_TIMESTAMP is set. */
	__u64 tai_ns;
	/* Length of the frame on the wire (all buffers of a multi-buffer frame). */
	__u32 wire_len;
	/* ANONCAP_F_* bits. */
	__u32 flags;
	/* Length of the frame after the program's cut: what follows the block in memory. */
	__u32 hdr_len;
	/* The RX queue the frame arrived on. */
	__u32 rx_queue;
};

/* The in-kernel walk stopped before the end of the L4 header (depth limit, tunnel, ICMP,
 * unknown protocol, malformed or truncated header): the frame was kept up to the
 * conservative snap length and user space must parse it fully. */
#define ANONCAP_F_REPARSE (1u << 0)
/* The program shortened the frame (hdr_len < wire_len). */
#define ANONCAP_F_TRUNCATED (1u << 1)
/* The frame arrived in several buffers (xdp.frags, jumbo MTU). */
#define ANONCAP_F_MULTI_BUFFER (1u << 2)
/* tai_ns holds the device RX timestamp, not the kernel clock. */
#define ANONCAP_F_HW_TIMESTAMP (1u << 3)
/* At least one 802.1Q/802.1ad tag was seen. */
#define ANONCAP_F_VLAN (1u << 4)
/* An MPLS label stack was seen. */
#define ANONCAP_F_MPLS (1u << 5)
/* The network header is IPv4 / IPv6. */
#define ANONCAP_F_IPV4 (1u << 6)
#define ANONCAP_F_IPV6 (1u << 7)
/* The L4 header is TCP / UDP and ends at hdr_len. */
#define ANONCAP_F_TCP (1u << 8)
#define ANONCAP_F_UDP (1u << 9)
/* A non-first IP fragment: no L4 header, the cut is at the end of the IP headers. */
#define ANONCAP_F_FRAGMENT (1u << 10)
/* The prefilter is active but could not decide (the walk stopped before the field it tests):
 * the frame was captured and user space must apply the filter itself. */
#define ANONCAP_F_FILTER_UNDECIDED (1u << 11)

/* In-kernel walk limits (documented in docs/xdp.md). */
#define ANONCAP_MAX_VLAN 4
#define ANONCAP_MAX_MPLS 8
#define ANONCAP_MAX_IPV6_EXT 8

/* Slots of the per-CPU counter array. */
enum anoncap_counter {
	ANONCAP_C_SEEN = 0,          /* frames on a queue that has a socket */
	ANONCAP_C_PASS_NO_SOCKET,    /* passed untouched: no socket for the queue */
	ANONCAP_C_PASS_FILTERED,     /* passed untouched: the prefilter rejected them */
	ANONCAP_C_REDIRECTED,        /* handed to bpf_redirect_map */
	ANONCAP_C_REDIRECT_MISSED,   /* the socket vanished between lookup and redirect */
	ANONCAP_C_TRUNCATED,         /* shortened by bpf_xdp_adjust_tail */
	ANONCAP_C_UNPARSED,          /* REPARSE set: the walk stopped early */
	ANONCAP_C_META_FAILED,       /* bpf_xdp_adjust_meta failed: passed untouched */
	ANONCAP_C_TAIL_FAILED,       /* bpf_xdp_adjust_tail failed: kept whole, REPARSE */
	ANONCAP_C_MULTI_BUFFER,      /* multi-buffer frames seen */
	ANONCAP_C_HW_TIMESTAMP,      /* frames stamped with the device RX timestamp */
	ANONCAP_C_FILTER_UNDECIDED,  /* captured because the prefilter could not decide */
	ANONCAP_C_COUNT,
};

struct anoncap_counters {
	__u64 c[ANONCAP_C_COUNT];
};

/*
 * Load-time configuration, in .rodata (set by the loader before the verifier sees the
 * program, so disabled features are dead code). Bit sets are arrays of __u32 words, bit
 * (v & 31) of word (v >> 5).
 */
struct anoncap_config {
	/* Bytes kept when the walk stops early (REPARSE). */
	__u32 snap_len;
	/* Non-zero only for BPF_PROG_RUN tests: skip the XSKMAP check and return XDP_TX where
	 * the program would redirect. The loader refuses to attach such a program. */
	__u32 test_mode;
	/* Non-zero when the corresponding set below is active (an empty set accepts all). */
	__u32 filter_protocols;
	__u32 filter_ports;
	__u32 filter_vlans;
	__u32 reserved;
	/* IP protocol numbers (after IPv6 extension headers). */
	__u32 protocols[8];
	/* VLAN ids of the outermost tag. */
	__u32 vlans[128];
	/* TCP/UDP ports, source or destination. */
	__u32 ports[2048];
	/* UDP ports whose payload user space decodes (tunnels): such frames are REPARSE. */
	__u32 reparse_udp_ports[2048];
};

#endif /* ANONCAP_META_H */
