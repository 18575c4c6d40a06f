/*
 * tool_tls.c - `tlsproxy tls ...` (spec 7).  Placeholder until the key
 * management verbs land.
 */
#include "tlsproxy/tool_tls.h"

#include <stdio.h>

int
tp_tool_tls(const char *path, int argc, char **argv)
{
	(void)path;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tlsproxy tls: not implemented yet\n");
	return 2;
}
