/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* anoncap's XDP program, generic object: timestamps from the kernel's CLOCK_TAI. */
#include "anoncap.h"

SEC("xdp.frags")
int anoncap_xdp_prog(struct xdp_md *ctx)
{
	return anoncap_xdp(ctx);
}
