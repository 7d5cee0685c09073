#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# odp-faults.sh [LINK]  (runs in the guest)
#
# Print the ODP page faults rxe has counted on LINK (default rxe0/1):
# the device-wide odp_page_faults hw counter, as `rdma statistic` shows
# it. Prints nothing when the device has no such counter (stock or
# upstream rxe).
set -eu
rdma statistic show link "${1:-rxe0/1}" |
	awk '{ for (i = 1; i < NF; i++) if ($i == "odp_page_faults") print $(i + 1) }'
