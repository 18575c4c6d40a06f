/*
 * common.h - error codes, container_of, magic checks shared by every module.
 * Header only; no state.
 */
#ifndef TLSPROXY_COMMON_H
#define TLSPROXY_COMMON_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TP_VERSION "0.1.0"

/* Our own error codes; libuv's UV_E* are negative errno values too. */
#define TP_EPROTO  (-10001) /* peer broke the protocol */
#define TP_ETLS    (-10002) /* TLS handshake or record failure */
#define TP_ELIMIT  (-10003) /* a limit was reached */
#define TP_ECONFIG (-10004) /* bad configuration */

#define tp_container_of(ptr, type, member)                                     \
	((type *)((char *)(ptr)-offsetof(type, member)))

#define TP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Magic numbers guard every owner reached through handle->data (hitch). */
#ifdef NDEBUG
#define TP_CHECK_MAGIC(p, m) ((void)(p))
#else
#define TP_CHECK_MAGIC(p, m) assert((p) != NULL && (p)->magic == (m))
#endif

/* tp_xrealloc - realloc of n items of sz bytes (at least 1); exits on ENOMEM.
 */
static inline void *
tp_xrealloc(void *p, size_t n, size_t sz)
{
	p = realloc(p, (n ? n : 1) * sz);
	if (p == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	return p;
}

#endif
