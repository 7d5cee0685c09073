#!/bin/bash
# dkms-source.sh DIR: put the DKMS source tree of rxe-odp into
# DIR/rxe-odp-VERSION (VERSION from dkms.conf) and print its path: what
# `dkms add` takes, i.e. dkms.conf, Kbuild, our kernel files and patches,
# and the scripts that compose and build the tree (dkms-build.sh,
# prepare-tree.sh). From a git checkout, tracked files only.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
dest=$1/rxe-odp-$version
rm -rf "$dest"
mkdir -p "$dest"
files=(dkms.conf Kbuild drivers include scripts/dkms-build.sh
       scripts/prepare-tree.sh)
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z "${files[@]}" |
		xargs -0 cp --parents -t "$dest")
else
	(cd "$top" && cp -r --parents -t "$dest" "${files[@]}")
fi
echo "$dest"
