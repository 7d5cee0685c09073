#!/bin/bash
# lint.sh KSRC: the kernel's own style checks on our kernel code, with the
# checkers from Debian's linux-source (KSRC = the extracted subset):
# checkpatch --strict on our .c/.h files and patches, kernel-doc -Wall on
# our headers and sources.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ksrc=$1
cd "$top"
mapfile -t files < <(git ls-files 'drivers/*.c' 'drivers/*.h' 'include/*.h')
mapfile -t patches < <(git ls-files 'drivers/*.patch')
rc=0
checkpatch=("$ksrc/scripts/checkpatch.pl" --no-tree --strict --quiet
	    --show-types --ignore FILE_PATH_CHANGES)
if [ ${#files[@]} -gt 0 ]; then
	"${checkpatch[@]}" -f "${files[@]}" || rc=1
fi
for p in "${patches[@]}"; do
	# From stdin: given a *.patch name, checkpatch checks it as a file.
	"${checkpatch[@]}" - <"$p" || rc=1
done
if [ ${#files[@]} -gt 0 ]; then
	out=$("$ksrc/scripts/kernel-doc" -none -Wall "${files[@]}" 2>&1) || rc=1
	if [ -n "$out" ]; then
		echo "$out"
		rc=1
	fi
fi
[ "$rc" = 0 ] && echo "lint: clean (${#files[@]} files, ${#patches[@]} patches)"
exit "$rc"
