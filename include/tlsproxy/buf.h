/*
 * buf.h - fixed-size byte chunks, a per-worker free list and chunk queues.
 * Sessions hold chunks only while bytes are in flight, so an idle session
 * holds none.  Not thread-safe: a pool belongs to one worker loop.
 */
#ifndef TLSPROXY_BUF_H
#define TLSPROXY_BUF_H

#include <stddef.h>
#include <stdint.h>

#define TP_CHUNK_SIZE (32 * 1024 - 32)

struct tp_chunk {
	struct tp_chunk *next;
	uint32_t start; /* first unconsumed byte */
	uint32_t end;   /* one past the last byte */
	char data[TP_CHUNK_SIZE];
};

struct tp_pool {
	struct tp_chunk *free;
	size_t nfree;
	size_t max_free;
	size_t live; /* chunks handed out and not yet returned */
};

struct tp_chunkq {
	struct tp_chunk *head, *tail;
	size_t bytes;
};

void tp_pool_init(struct tp_pool *p, size_t max_free);
void tp_pool_destroy(struct tp_pool *p);
/* tp_chunk_get - an empty chunk, or NULL when out of memory. */
struct tp_chunk *tp_chunk_get(struct tp_pool *p);
void tp_chunk_put(struct tp_pool *p, struct tp_chunk *c);
/* tp_chunk_from_data - the chunk whose data[] starts at base. */
struct tp_chunk *tp_chunk_from_data(char *base);

/* tp_chunkq_append - copy bytes to the tail; 0, or -1 out of memory. */
int tp_chunkq_append(
    struct tp_chunkq *q, struct tp_pool *p, const void *data, size_t len);
/* tp_chunkq_push - move a filled chunk to the tail. */
void tp_chunkq_push(struct tp_chunkq *q, struct tp_chunk *c);
/* tp_chunkq_consume - drop n bytes from the head, freeing empty chunks. */
void tp_chunkq_consume(struct tp_chunkq *q, struct tp_pool *p, size_t n);
void tp_chunkq_clear(struct tp_chunkq *q, struct tp_pool *p);

#endif
