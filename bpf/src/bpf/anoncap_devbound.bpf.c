/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * anoncap's XDP program, device-bound object: loaded with BPF_F_XDP_DEV_BOUND_ONLY for one
 * interface, it stamps frames with the device RX timestamp when the driver gives a non-zero
 * one (bpf_xdp_metadata_rx_timestamp), and with CLOCK_TAI otherwise. The verifier rejects the
 * kfunc in a program that is not device-bound, hence the separate object.
 */
#define ANONCAP_DEV_BOUND 1
#include "anoncap.h"

SEC("xdp.frags")
int anoncap_xdp_prog(struct xdp_md *ctx)
{
	return anoncap_xdp(ctx);
}
