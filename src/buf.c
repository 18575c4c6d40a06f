/*
 * buf.c - chunk free list and queues: no malloc on the relay path once the
 * free list is warm.  A chunk goes back to the list as soon as its last
 * byte is consumed; the list keeps at most max_free chunks so a burst does
 * not pin memory forever.  Single-threaded (one pool per worker).
 */
#include "tlsproxy/buf.h"

#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"

void
tp_pool_init(struct tp_pool *p, size_t max_free)
{
	memset(p, 0, sizeof(*p));
	p->max_free = max_free;
}

void
tp_pool_destroy(struct tp_pool *p)
{
	struct tp_chunk *c;

	while ((c = p->free) != NULL) {
		p->free = c->next;
		free(c);
	}
	p->nfree = 0;
}

struct tp_chunk *
tp_chunk_get(struct tp_pool *p)
{
	struct tp_chunk *c = p->free;

	if (c != NULL) {
		p->free = c->next;
		p->nfree--;
	} else if ((c = malloc(sizeof(*c))) == NULL) {
		return NULL;
	}
	c->next = NULL;
	c->start = c->end = 0;
	p->live++;
	return c;
}

void
tp_chunk_put(struct tp_pool *p, struct tp_chunk *c)
{
	p->live--;
	if (p->nfree >= p->max_free) {
		free(c);
		return;
	}
	c->next = p->free;
	p->free = c;
	p->nfree++;
}

struct tp_chunk *
tp_chunk_from_data(char *base)
{
	return tp_container_of(base, struct tp_chunk, data);
}

void
tp_chunkq_push(struct tp_chunkq *q, struct tp_chunk *c)
{
	c->next = NULL;
	if (q->tail != NULL)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->bytes += c->end - c->start;
}

int
tp_chunkq_append(
    struct tp_chunkq *q, struct tp_pool *p, const void *data, size_t len)
{
	const char *src = data;
	struct tp_chunk *t;
	size_t n;

	while (len > 0) {
		t = q->tail;
		if (t == NULL || t->end == TP_CHUNK_SIZE) {
			if ((t = tp_chunk_get(p)) == NULL)
				return -1;
			tp_chunkq_push(q, t);
		}
		n = TP_CHUNK_SIZE - t->end;
		if (n > len)
			n = len;
		memcpy(t->data + t->end, src, n);
		t->end += (uint32_t)n;
		q->bytes += n;
		src += n;
		len -= n;
	}
	return 0;
}

void
tp_chunkq_consume(struct tp_chunkq *q, struct tp_pool *p, size_t n)
{
	struct tp_chunk *c;
	size_t avail;

	assert(n <= q->bytes);
	q->bytes -= n;
	while ((c = q->head) != NULL) {
		avail = c->end - c->start;
		if (n < avail) {
			c->start += (uint32_t)n;
			return;
		}
		n -= avail;
		q->head = c->next;
		if (q->head == NULL)
			q->tail = NULL;
		tp_chunk_put(p, c);
	}
}

void
tp_chunkq_clear(struct tp_chunkq *q, struct tp_pool *p)
{
	tp_chunkq_consume(q, p, q->bytes);
}
