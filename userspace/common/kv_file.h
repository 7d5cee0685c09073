/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kv_file - read one value from a file of "KEY VALUE" lines: odp_mirror's
 * debugfs live counts, /proc/vmstat, a cgroup's memory.events. Header
 * only, for the tests and the benchmarks.
 */
#ifndef KV_FILE_H
#define KV_FILE_H

#include <stdio.h>
#include <string.h>

/* The value on the last line of @path whose key is @key; -1 if none. */
static inline long long kv_file_value(const char *path, const char *key)
{
	char k[64];
	long long v, found = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, key))
			found = v;
	fclose(f);
	return found;
}

#endif /* KV_FILE_H */
