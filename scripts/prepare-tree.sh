#!/bin/bash
# prepare-tree.sh SRC BUILD: compose the Kbuild tree under BUILD from
# Debian's rxe sources (SRC = extracted linux-source subset), our patches
# (drivers/infiniband/sw/rxe/*.patch, applied in name order) and our own
# files. Files whose content did not change keep their mtime, so kbuild
# rebuilds only what changed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
src=$1
build=$2
rxe=drivers/infiniband/sw/rxe
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/$rxe" "$build"
cp -a "$src/$rxe/." "$stage/$rxe/"
# Compat patches (drivers/infiniband/sw/rxe/compat/) bring an older 6.12
# rxe to what our patches build on, as later 6.12 stable updates did: each
# is applied where it applies cleanly, and left out where the base has the
# change already (there it cannot apply: its old lines are gone).
for p in "$top/$rxe"/compat/*.patch; do
	[ -e "$p" ] || continue
	if patch -s -p1 -d "$stage" --dry-run -f --no-backup-if-mismatch \
		<"$p" >/dev/null 2>&1; then
		patch -s -p1 -d "$stage" --no-backup-if-mismatch <"$p"
		echo "prepare-tree: applied compat/${p##*/}" >&2
	fi
done
for p in "$top/$rxe"/*.patch; do
	[ -e "$p" ] || continue
	if ! patch -s -p1 -d "$stage" --no-backup-if-mismatch <"$p"; then
		echo "prepare-tree: $p does not apply to Debian's rxe" >&2
		exit 1
	fi
done
(cd "$top" && find Kbuild drivers include -type f ! -name '*.patch' \
	! -name '*.o' ! -name '*.ko' ! -name '*.cmd' ! -name '*.mod*' \
	-print0 | xargs -0 cp --parents -t "$stage")
# Copy the sources into the build tree, leaving a file whose content is
# the same untouched (its mtime too). Plain find/cmp/cp: this also runs
# under DKMS on users' machines, which need not have rsync.
(cd "$stage" && find . -type f \( -name '*.c' -o -name '*.h' -o \
	-name Kbuild -o -name Makefile -o -name Kconfig \) -print0) |
	while IFS= read -r -d '' f; do
		cmp -s "$stage/$f" "$build/$f" && continue
		mkdir -p "$build/$(dirname "$f")"
		cp "$stage/$f" "$build/$f"
	done
