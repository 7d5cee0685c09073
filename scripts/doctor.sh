#!/bin/bash
# doctor.sh: tell whether this machine's running kernel can use rxe-odp,
# and why not (make doctor). Read-only: it installs and loads nothing.
#
# Prints one line per check ("ok", "note" or "FAIL", then what to do) and
# exits 0 when nothing failed. The kernels tested are those of
# kernels.matrix; a 6.12 kernel not listed there is reported as untested.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kver=${RXE_ODP_DOCTOR_KVER:-$(uname -r)}
failed=0

ok() { printf 'ok    %s\n' "$*"; }
note() { printf 'note  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failed=1; }
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null; }

# The kernel
case $kver in
6.12.*)
	row=$("$top/scripts/kernel-env.sh" --list | while read -r n; do
		[ "$("$top/scripts/kernel-env.sh" --kver "$n")" = "$kver" ] && echo "$n"
	done | head -n 1)
	if [ -n "$row" ]; then
		ok "kernel $kver: tested here (kernels.matrix: $row)"
	else
		note "kernel $kver: a 6.12 kernel, but not one make check tests (kernels.matrix); it will most likely work"
	fi
	;;
*)
	fail "kernel $kver: rxe-odp is for Debian's 6.12 kernels only; from 6.14 on, upstream rxe has ODP of its own (dkms refuses to build for it)"
	;;
esac
case $kver in
*-cloud-amd64) note "flavour cloud-amd64: Debian builds it without rdma_rxe; ours is then the only soft-RoCE driver" ;;
*-rt-amd64) note "flavour rt-amd64 (PREEMPT_RT): not tested" ;;
esac

# What DKMS needs to build
if [ -e "/lib/modules/$kver/build" ]; then
	ok "headers: /lib/modules/$kver/build"
else
	fail "headers: none for $kver: apt install linux-headers-$kver"
fi
src=/usr/src/linux-source-6.12.tar.xz
image_v=$(pkg_version "linux-image-$kver")
[ -n "$image_v" ] || image_v=$(pkg_version "linux-image-$kver-unsigned")
if [ -f "$src" ]; then
	src_v=$(pkg_version linux-source-6.12)
	if [ -n "$image_v" ] && [ "$src_v" != "$image_v" ]; then
		note "linux-source-6.12 $src_v, kernel $image_v: rxe is built from the source's version; install the same (apt install linux-source-6.12=$image_v) to build the rxe of your kernel"
	else
		ok "rxe sources: $src (linux-source-6.12 ${src_v:-?})"
	fi
else
	fail "rxe sources: $src missing (rxe is not in linux-headers): apt install linux-source-6.12${image_v:+=$image_v}"
fi
if command -v dkms >/dev/null; then
	ok "dkms: $(dkms --version 2>/dev/null)"
else
	fail "dkms: not installed: apt install dkms (or build by hand: make KERNEL=...)"
fi

# Secure Boot: an unsigned module does not load
sb=$(od -An -t u1 -j 4 -N 1 \
	/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null | tr -d ' ')
if [ "$sb" = 1 ]; then
	if mokutil --list-enrolled 2>/dev/null | grep -q "DKMS module signing key"; then
		ok "Secure Boot on; DKMS's signing key is enrolled"
	else
		fail "Secure Boot on: the kernel loads only signed modules. DKMS signs with /var/lib/dkms/mok.key; enrol its key once: mokutil --import /var/lib/dkms/mok.pub, reboot, and confirm it in the MOK manager"
	fi
else
	ok "Secure Boot: off or not UEFI"
fi

# Which rxe is there
if [ -d /sys/module/rdma_rxe ]; then
	if [ -d /sys/module/odp_mirror ]; then
		ok "rdma_rxe loaded: ours (odp_mirror is loaded)"
	else
		note "rdma_rxe loaded: Debian's own, without ODP: modprobe -r rdma_rxe && modprobe rdma_rxe (DKMS installs ours into updates/dkms, which wins)"
	fi
fi
file=$(modinfo -k "$kver" -n rdma_rxe 2>/dev/null)
case $file in
*/updates/dkms/*) ok "modprobe rdma_rxe loads ours: $file" ;;
"") note "no rdma_rxe for $kver yet (make dkms-install builds ours)" ;;
*) note "modprobe rdma_rxe loads Debian's own: $file (make dkms-install)" ;;
esac

# Userspace
rc_v=$(pkg_version ibverbs-providers)
if [ -z "$rc_v" ]; then
	fail "rdma-core: ibverbs-providers not installed: apt install rdma-core ibverbs-providers ibverbs-utils"
else
	case $rc_v in
	[0-5][0-9].* | [0-9].*)
		note "rdma-core $rc_v: ODP MRs, explicit and implicit, work; its rxe provider has no advise_mr, so ibv_advise_mr (prefetch) fails with EOPNOTSUPP in userspace: rdma-core 65 has it (tests/lanes/build-newer-userspace.sh builds it)"
		;;
	*) ok "rdma-core $rc_v" ;;
	esac
fi
exit "$failed"
