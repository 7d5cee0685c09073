#!/bin/bash
# rxe-patches.sh init DIR | export DIR
#
# Work on our rxe patches as git commits:
#   init DIR    DIR becomes a git repository holding Debian's pristine rxe
#               (from the extracted linux-source, see fetch-kernel.sh) as
#               its first commit, with drivers/infiniband/sw/rxe/*.patch
#               applied on top as one commit each (git am).
#   export DIR  write DIR's commits after the pristine one back as
#               drivers/infiniband/sw/rxe/NNNN-*.patch (git format-patch),
#               replacing the old patch files.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel-env.sh")"
cache=${RXE_ODP_CACHE:-$HOME/.cache/rxe-odp}
src=$cache/$KVER/src
rxe=drivers/infiniband/sw/rxe
git=(git -c user.name=rxe-odp -c user.email=rxe-odp@localhost)

case ${1:-} in
init)
	dir=$2
	[ -f "$cache/$KVER/.extracted" ] ||
		"$top/scripts/fetch-kernel.sh" >/dev/null
	mkdir -p "$dir/$rxe"
	cp -a "$src/$rxe/." "$dir/$rxe/"
	cd "$dir"
	"${git[@]}" init -q
	"${git[@]}" add -A
	"${git[@]}" commit -qm "Debian $KERNEL_PKG_VERSION rxe (pristine)"
	"${git[@]}" tag pristine
	for p in "$top/$rxe"/*.patch; do
		[ -e "$p" ] && "${git[@]}" am -q "$p"
	done
	git log --oneline
	;;
export)
	dir=$2
	rm -f "$top/$rxe"/*.patch
	(cd "$dir" && "${git[@]}" format-patch -q --no-signature \
		-o "$top/$rxe" pristine..HEAD)
	ls "$top/$rxe"/*.patch
	;;
*)
	echo "usage: $0 init DIR | export DIR" >&2
	exit 2
	;;
esac
