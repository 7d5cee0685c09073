#!/bin/bash
# kernel-env.sh [NAME]: print, as shell assignments, the row NAME of
# kernels.matrix, or of kernels.upstream (default: $KERNEL, else the
# first row of kernels.matrix):
#   KERNEL_NAME KERNEL_SUITE KERNEL_FLAVOUR KERNEL_PKG_VERSION KERNEL_ABI
#   KERNEL_UPSTREAM  1 for a row of kernels.upstream (its own rxe only)
#   KERNEL_RELEASE   Debian release whose toolchain builds for it
#                    (bookworm or trixie: the suite's first word)
#   KVER             uname -r of the kernel (<abi>-<flavour>)
# Use: eval "$(scripts/kernel-env.sh NAME)".
#
# kernel-env.sh --list         the names of kernels.matrix, default first
# kernel-env.sh --suites       the suites of kernels.matrix, each once
# kernel-env.sh --kver [NAME]  KVER only (for make)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
rows() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${1:-$top/kernels.matrix}"; }

case ${1:-} in
--list)
	rows | awk '{ print $1 }'
	exit 0
	;;
--suites)
	rows | awk '!seen[$2]++ { print $2 }'
	exit 0
	;;
--kver)
	shift
	kver_only=1
	;;
esac
name=${1:-${KERNEL:-$(rows | awk 'NR == 1 { print $1 }')}}
upstream=0
row=$(rows | awk -v n="$name" '$1 == n')
if [ -z "$row" ]; then
	upstream=1
	row=$(rows "$top/kernels.upstream" | awk -v n="$name" '$1 == n')
fi
if [ -z "$row" ]; then
	echo "kernel-env: no kernel '$name' in kernels.matrix ($(rows | awk '{ print $1 }' | tr '\n' ' ')) or kernels.upstream ($(rows "$top/kernels.upstream" | awk '{ print $1 }' | tr '\n' ' '))" >&2
	exit 2
fi
read -r n suite flavour version abi extra <<<"$row"
if [ -z "$abi" ] || [ -n "${extra:-}" ]; then
	echo "kernel-env: kernels.matrix row '$name' needs 5 fields: $row" >&2
	exit 2
fi
if [ -n "${kver_only:-}" ]; then
	echo "$abi-$flavour"
	exit 0
fi
printf 'KERNEL_NAME=%q\nKERNEL_SUITE=%q\nKERNEL_FLAVOUR=%q\n' "$n" "$suite" "$flavour"
printf 'KERNEL_PKG_VERSION=%q\nKERNEL_ABI=%q\n' "$version" "$abi"
printf 'KERNEL_RELEASE=%q\nKVER=%q\n' "${suite%%-*}" "$abi-$flavour"
printf 'KERNEL_UPSTREAM=%s\n' "$upstream"
