/*
 * fuzz_split.h - split points derived from the input, shared by the
 * fuzz targets: a tiny LCG seeded from one input byte picks each piece's
 * size, so the same input always splits the same way and the fuzzer
 * explores splits by mutating that byte.  Header-only.
 */
#ifndef TLSPROXY_FUZZ_SPLIT_H
#define TLSPROXY_FUZZ_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fz_split {
	uint32_t state;
	size_t max; /* 0: everything at once */
};

static inline void
fz_split_init(struct fz_split *s, uint8_t seed)
{
	static const size_t maxes[8] = {0, 1, 2, 3, 7, 16, 100, 700};

	s->state = seed * 2654435761u + 1;
	s->max = maxes[seed & 7];
}

/* fz_split_next - the next piece's size, 1..left. */
static inline size_t
fz_split_next(struct fz_split *s, size_t left)
{
	size_t n;

	if (s->max == 0)
		return left;
	s->state = s->state * 1103515245u + 12345u;
	n = 1 + (s->state >> 16) % s->max;
	return n < left ? n : left;
}

#define FZ_CHECK(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
