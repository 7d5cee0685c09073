#!/bin/bash
# build-debug-kernel.sh: build the debug kernel of `make check-debug` and
# print its cache directory.
#
# The kernel is the first row of kernels.matrix, rebuilt from the same
# linux-source-6.12 package with Debian's own config of that kernel, its
# modules trimmed to those the guest loads (tests/debug/modules.list,
# localmodconfig), then tests/debug/kernel.config merged over it (KASAN,
# lockdep, kmemleak, DEBUG_VM, DEBUG_LIST, fault injection; no debug
# info). The result is cached under
#   $RXE_ODP_CACHE/debug/<kver>-<hash>/
# keyed by the package version and a hash of the two files and this
# script, laid out as fetch-kernel.sh lays out a Debian kernel:
#   kver                     uname -r of the debug kernel
#   image/boot/vmlinuz-KVER  image/boot/config-KVER
#   image/lib/modules/KVER   the trimmed module tree, depmod'ed
#   src/                     the whole source tree
#   root/usr/src/linux-headers-KVER
#                            the object tree (KDIR for our modules)
#   build.log                the build's output
# A build that was cut off (a session's end) goes on where it stopped
# when the script runs again: the source is extracted and configured
# once (.configured), make does the rest.
# Needs flex, bison, libelf-dev and libssl-dev (scripts/setup.sh --debug).
# About 20 minutes on two cores when nothing is cached; the build uses
# every core (RXE_ODP_JOBS to change).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel-env.sh" "$("$top/scripts/kernel-env.sh" --list | head -n 1)")"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
fragment=$top/tests/debug/kernel.config
modlist=$top/tests/debug/modules.list
hash=$(cat "$fragment" "$modlist" "$0" | sha256sum | cut -c1-12)
dcache=$cache/debug/$KVER-$hash
jobs=${RXE_ODP_JOBS:-$(nproc)}

mkdir -p "$cache/debug"
exec 9>"$dcache.lock"
flock 9
if [ -f "$dcache/.built" ]; then
	echo "$dcache"
	exit 0
fi

[ -f "$cache/$KVER/.extracted" ] || "$top/scripts/fetch-kernel.sh" "$KERNEL_NAME" >/dev/null
kmake=(make -C "$dcache/src" O="$dcache/obj" -j"$jobs")
if [ ! -f "$dcache/.configured" ]; then
	for tool in flex bison; do
		command -v "$tool" >/dev/null ||
			{ echo "build-debug-kernel: $tool is missing (scripts/setup.sh --debug)" >&2; exit 2; }
	done
	debfile=$(compgen -G "$cache/debs/linux-source-6.12_${KERNEL_PKG_VERSION/\~/%7e}_all.deb" ||
		  compgen -G "$cache/debs/linux-source-6.12_${KERNEL_PKG_VERSION}_all.deb")

	rm -rf "$dcache"
	mkdir -p "$dcache/obj"
	echo "build-debug-kernel: extracting linux-source-6.12 $KERNEL_PKG_VERSION" >&2
	dpkg-deb --fsys-tarfile "$debfile" | tar -x -C "$dcache" ./usr/src/linux-source-6.12.tar.xz
	tar -xJf "$dcache/usr/src/linux-source-6.12.tar.xz" -C "$dcache"
	mv "$dcache/linux-source-6.12" "$dcache/src"
	rm -rf "${dcache:?}/usr"

	cp "$cache/$KVER/image/boot/config-$KVER" "$dcache/obj/.config"
	{
		"${kmake[@]}" LSMOD="$modlist" localmodconfig </dev/null
		"$dcache/src/scripts/kconfig/merge_config.sh" -m -O "$dcache/obj" \
			"$dcache/obj/.config" "$fragment"
		"${kmake[@]}" olddefconfig
	} >"$dcache/build.log" 2>&1
	# Every line of the fragment must have survived olddefconfig: a symbol
	# that a dependency turned off would make a weaker kernel than asked for.
	# survived LINE: LINE is in the config, or it is "# CONFIG_X is not set"
	# and X has no value there.
	survived() {
		local sym
		grep -qxF "$1" "$dcache/obj/.config" && return 0
		sym=$(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' <<<"$1")
		[ -n "$sym" ] && ! grep -q "^$sym=" "$dcache/obj/.config"
	}
	lost=$(grep -E '^(CONFIG_[A-Z0-9_]+=|# CONFIG_[A-Z0-9_]+ is not set)' "$fragment" |
	       while IFS= read -r line; do survived "$line" || echo "$line"; done)
	if [ -n "$lost" ]; then
		echo "build-debug-kernel: these lines of $fragment did not survive olddefconfig:" >&2
		echo "$lost" >&2
		exit 1
	fi
	touch "$dcache/.configured"
fi
echo "build-debug-kernel: building in $dcache/obj ($jobs jobs; log: build.log)" >&2
if ! "${kmake[@]}" bzImage modules >>"$dcache/build.log" 2>&1; then
	tail -n 40 "$dcache/build.log" >&2
	exit 1
fi
kver=$("${kmake[@]}" -s kernelrelease)
"${kmake[@]}" INSTALL_MOD_PATH="$dcache/image" modules_install >>"$dcache/build.log" 2>&1
mkdir -p "$dcache/image/boot" "$dcache/root/usr/src"
cp "$dcache/obj/arch/x86/boot/bzImage" "$dcache/image/boot/vmlinuz-$kver"
cp "$dcache/obj/.config" "$dcache/image/boot/config-$kver"
rm -f "$dcache/image/lib/modules/$kver/build" "$dcache/image/lib/modules/$kver/source"
ln -sfn ../../../obj "$dcache/root/usr/src/linux-headers-$kver"
echo "$kver" >"$dcache/kver"
touch "$dcache/.built"
echo "$dcache"
