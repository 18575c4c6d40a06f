/*
 * test_buf.c - chunk pool and chunk queues (buf.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tlsproxy/buf.h"

/* pattern - byte I of the test stream (not periodic in TP_CHUNK_SIZE). */
static unsigned char
pattern(size_t i)
{
	return (unsigned char)((i * 131u + (i >> 8) * 7u + 3u) & 0xff);
}

static uint32_t
fnv1a(uint32_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* q_check - the queue's invariants: bytes == sum of chunk spans, tail. */
static void
q_check(const struct tp_chunkq *q)
{
	const struct tp_chunk *c, *last = NULL;
	size_t sum = 0;

	for (c = q->head; c != NULL; c = c->next) {
		assert_true(c->start <= c->end);
		assert_true(c->end <= TP_CHUNK_SIZE);
		sum += c->end - c->start;
		last = c;
	}
	assert_int_equal(sum, q->bytes);
	assert_ptr_equal(last, q->tail);
}

/* q_hash - checksum of the queue's bytes, head to tail. */
static uint32_t
q_hash(const struct tp_chunkq *q)
{
	uint32_t h = 2166136261u;

	for (const struct tp_chunk *c = q->head; c != NULL; c = c->next)
		h = fnv1a(h, c->data + c->start, c->end - c->start);
	return h;
}

/* q_equals - the queue holds exactly pattern(off .. off+len-1). */
static void
q_equals(const struct tp_chunkq *q, size_t off, size_t len)
{
	size_t i = off;

	assert_int_equal(q->bytes, len);
	for (const struct tp_chunk *c = q->head; c != NULL; c = c->next)
		for (uint32_t j = c->start; j < c->end; j++, i++)
			if ((unsigned char)c->data[j] != pattern(i))
				fail_msg("byte %zu: 0x%02x, want 0x%02x", i,
				    (unsigned char)c->data[j], pattern(i));
	assert_int_equal(i, off + len);
}

static size_t
q_nchunks(const struct tp_chunkq *q)
{
	size_t n = 0;

	for (const struct tp_chunk *c = q->head; c != NULL; c = c->next)
		n++;
	return n;
}

static unsigned char *
make_stream(size_t len)
{
	unsigned char *d = malloc(len ? len : 1);

	assert_non_null(d);
	for (size_t i = 0; i < len; i++)
		d[i] = pattern(i);
	return d;
}

static void
test_pool_basic(void **state)
{
	struct tp_pool p;
	struct tp_chunk *a, *b;

	(void)state;
	memset(&p, 0xa5, sizeof(p));
	tp_pool_init(&p, 4);
	assert_null(p.free);
	assert_int_equal(p.nfree, 0);
	assert_int_equal(p.max_free, 4);
	assert_int_equal(p.live, 0);

	a = tp_chunk_get(&p);
	b = tp_chunk_get(&p);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(p.live, 2);
	assert_null(a->next);
	assert_int_equal(a->start, 0);
	assert_int_equal(a->end, 0);

	tp_chunk_put(&p, a);
	assert_int_equal(p.live, 1);
	assert_int_equal(p.nfree, 1);
	tp_chunk_put(&p, b);
	assert_int_equal(p.live, 0);
	assert_int_equal(p.nfree, 2);
	tp_pool_destroy(&p);
	assert_int_equal(p.nfree, 0);
	assert_null(p.free);
}

static void
test_pool_reuse(void **state)
{
	struct tp_pool p;
	struct tp_chunk *a, *b;

	(void)state;
	tp_pool_init(&p, 2);
	a = tp_chunk_get(&p);
	assert_non_null(a);
	a->start = 5;
	a->end = 100;
	a->next = (struct tp_chunk *)&p; /* garbage, must be reset */
	tp_chunk_put(&p, a);
	assert_int_equal(p.nfree, 1);
	b = tp_chunk_get(&p);
	assert_ptr_equal(a, b); /* came back from the free list */
	assert_int_equal(p.nfree, 0);
	assert_int_equal(p.live, 1);
	assert_null(b->next);
	assert_int_equal(b->start, 0);
	assert_int_equal(b->end, 0);
	tp_chunk_put(&p, b);
	tp_pool_destroy(&p);
}

static void
test_pool_max_free(void **state)
{
	struct tp_chunk *c[10];
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 3);
	for (int i = 0; i < 10; i++) {
		c[i] = tp_chunk_get(&p);
		assert_non_null(c[i]);
	}
	assert_int_equal(p.live, 10);
	for (int i = 0; i < 10; i++) {
		tp_chunk_put(&p, c[i]);
		assert_true(p.nfree <= 3);
	}
	assert_int_equal(p.nfree, 3);
	assert_int_equal(p.live, 0);
	/* the list really holds nfree chunks */
	{
		size_t n = 0;

		for (struct tp_chunk *f = p.free; f != NULL; f = f->next)
			n++;
		assert_int_equal(n, 3);
	}
	/* three gets are served from the list, the fourth mallocs */
	for (int i = 0; i < 4; i++)
		c[i] = tp_chunk_get(&p);
	assert_int_equal(p.nfree, 0);
	assert_int_equal(p.live, 4);
	for (int i = 0; i < 4; i++)
		tp_chunk_put(&p, c[i]);
	tp_pool_destroy(&p);
}

static void
test_pool_max_free_zero(void **state)
{
	struct tp_pool p;
	struct tp_chunk *c;

	(void)state;
	tp_pool_init(&p, 0);
	c = tp_chunk_get(&p);
	assert_non_null(c);
	tp_chunk_put(&p, c); /* freed at once */
	assert_int_equal(p.nfree, 0);
	assert_null(p.free);
	assert_int_equal(p.live, 0);
	tp_pool_destroy(&p);
}

static void
test_chunk_from_data(void **state)
{
	struct tp_pool p;
	struct tp_chunk *c;

	(void)state;
	tp_pool_init(&p, 1);
	c = tp_chunk_get(&p);
	assert_non_null(c);
	assert_ptr_equal(tp_chunk_from_data(c->data), c);
	assert_ptr_equal(tp_chunk_from_data(&c->data[0]), c);
	tp_chunk_put(&p, c);
	tp_pool_destroy(&p);
}

static void
test_append_small(void **state)
{
	struct tp_chunkq q = {0};
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 8);
	assert_int_equal(tp_chunkq_append(&q, &p, "hello ", 6), 0);
	assert_int_equal(tp_chunkq_append(&q, &p, "world", 5), 0);
	q_check(&q);
	assert_int_equal(q.bytes, 11);
	assert_int_equal(q_nchunks(&q), 1);
	assert_int_equal(p.live, 1);
	assert_memory_equal(q.head->data, "hello world", 11);
	/* zero bytes: nothing changes, no chunk taken */
	assert_int_equal(tp_chunkq_append(&q, &p, "", 0), 0);
	assert_int_equal(q.bytes, 11);
	assert_int_equal(p.live, 1);
	tp_chunkq_clear(&q, &p);
	assert_int_equal(p.live, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(tp_chunkq_append(&q, &p, NULL, 0), 0);
	assert_null(q.head);
	assert_int_equal(p.live, 0);
	tp_pool_destroy(&p);
}

static void
test_append_across_chunks(void **state)
{
	const size_t total = 3 * TP_CHUNK_SIZE + 12345;
	unsigned char *d = make_stream(total);
	struct tp_chunkq q = {0};
	struct tp_pool p;
	size_t off = 0, step = 1;

	(void)state;
	tp_pool_init(&p, 16);
	/* uneven pieces, some straddling chunk boundaries */
	while (off < total) {
		size_t n = step < total - off ? step : total - off;

		assert_int_equal(tp_chunkq_append(&q, &p, d + off, n), 0);
		off += n;
		step = step * 3 + 7;
		q_check(&q);
	}
	assert_int_equal(q.bytes, total);
	assert_int_equal(q_nchunks(&q), 4);
	assert_int_equal(p.live, 4);
	assert_int_equal(q.head->end, TP_CHUNK_SIZE);
	assert_int_equal(q.tail->end, 12345);
	assert_true(q_hash(&q) == fnv1a(2166136261u, d, total));
	q_equals(&q, 0, total);
	tp_chunkq_clear(&q, &p);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(p.live, 0);
	free(d);
	tp_pool_destroy(&p);
}

static void
test_append_one_big(void **state)
{
	const size_t total = 2 * TP_CHUNK_SIZE;
	unsigned char *d = make_stream(total + 1);
	struct tp_chunkq q = {0};
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 16);
	/* exactly two full chunks */
	assert_int_equal(tp_chunkq_append(&q, &p, d, total), 0);
	q_check(&q);
	assert_int_equal(q_nchunks(&q), 2);
	assert_int_equal(q.tail->end, TP_CHUNK_SIZE);
	/* one more byte opens a third chunk */
	assert_int_equal(tp_chunkq_append(&q, &p, d + total, 1), 0);
	q_check(&q);
	assert_int_equal(q_nchunks(&q), 3);
	q_equals(&q, 0, total + 1);
	tp_chunkq_clear(&q, &p);
	assert_int_equal(p.live, 0);
	free(d);
	tp_pool_destroy(&p);
}

static void
test_consume_partial(void **state)
{
	const size_t total = 2 * TP_CHUNK_SIZE + 500;
	unsigned char *d = make_stream(total);
	struct tp_chunkq q = {0};
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 16);
	assert_int_equal(tp_chunkq_append(&q, &p, d, total), 0);
	/* part of the head chunk */
	tp_chunkq_consume(&q, &p, 100);
	q_check(&q);
	q_equals(&q, 100, total - 100);
	assert_int_equal(q_nchunks(&q), 3);
	assert_int_equal(q.head->start, 100);
	assert_int_equal(p.live, 3);
	/* across the head boundary: frees the first chunk */
	tp_chunkq_consume(&q, &p, TP_CHUNK_SIZE);
	q_check(&q);
	q_equals(&q, 100 + TP_CHUNK_SIZE, total - 100 - TP_CHUNK_SIZE);
	assert_int_equal(q_nchunks(&q), 2);
	assert_int_equal(q.head->start, 100);
	assert_int_equal(p.live, 2);
	assert_int_equal(p.nfree, 1);
	/* appending after a partial consume keeps the order */
	assert_int_equal(tp_chunkq_append(&q, &p, "tail", 4), 0);
	assert_int_equal(q.bytes, total - 100 - TP_CHUNK_SIZE + 4);
	assert_memory_equal(q.tail->data + q.tail->end - 4, "tail", 4);
	tp_chunkq_clear(&q, &p);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	free(d);
	tp_pool_destroy(&p);
}

static void
test_consume_exact_chunk(void **state)
{
	const size_t total = TP_CHUNK_SIZE + 10;
	unsigned char *d = make_stream(total);
	struct tp_chunkq q = {0};
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 16);
	assert_int_equal(tp_chunkq_append(&q, &p, d, total), 0);
	/* exactly the first chunk: it goes back, the second is untouched */
	tp_chunkq_consume(&q, &p, TP_CHUNK_SIZE);
	q_check(&q);
	assert_int_equal(q_nchunks(&q), 1);
	assert_int_equal(q.head->start, 0);
	assert_int_equal(q.head->end, 10);
	assert_ptr_equal(q.head, q.tail);
	q_equals(&q, TP_CHUNK_SIZE, 10);
	assert_int_equal(p.live, 1);
	/* exactly everything */
	tp_chunkq_consume(&q, &p, 10);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	/* the queue is usable again */
	assert_int_equal(tp_chunkq_append(&q, &p, d, 3), 0);
	q_check(&q);
	q_equals(&q, 0, 3);
	tp_chunkq_consume(&q, &p, 0);
	q_equals(&q, 0, 3);
	tp_chunkq_consume(&q, &p, 3);
	assert_null(q.head);
	assert_int_equal(p.live, 0);
	free(d);
	tp_pool_destroy(&p);
}

static void
test_consume_whole(void **state)
{
	const size_t total = 5 * TP_CHUNK_SIZE + 1;
	unsigned char *d = make_stream(total);
	struct tp_chunkq q = {0};
	struct tp_pool p;

	(void)state;
	tp_pool_init(&p, 2);
	assert_int_equal(tp_chunkq_append(&q, &p, d, total), 0);
	assert_int_equal(p.live, 6);
	tp_chunkq_consume(&q, &p, total);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	assert_int_equal(p.nfree, 2); /* bounded by max_free */
	free(d);
	tp_pool_destroy(&p);
}

static void
test_stream_fifo(void **state)
{
	/* a producer and a consumer with different step sizes */
	const size_t total = 10 * TP_CHUNK_SIZE + 777;
	unsigned char *d = make_stream(total);
	struct tp_chunkq q = {0};
	struct tp_pool p;
	size_t in = 0, out = 0, win = 5000, wout = 3;
	uint32_t hin = 2166136261u, hout = 2166136261u;

	(void)state;
	tp_pool_init(&p, 4);
	while (out < total) {
		size_t n = win < total - in ? win : total - in;

		if (n > 0) {
			assert_int_equal(
			    tp_chunkq_append(&q, &p, d + in, n), 0);
			hin = fnv1a(hin, d + in, n);
			in += n;
		}
		win = (win * 7 + 13) % (3 * TP_CHUNK_SIZE) + 1;
		/* read from the head, like a writer would */
		n = wout < q.bytes ? wout : q.bytes;
		{
			size_t left = n;
			const struct tp_chunk *c = q.head;

			while (left > 0) {
				size_t span = c->end - c->start;
				size_t k = span < left ? span : left;

				hout = fnv1a(hout, c->data + c->start, k);
				if (memcmp(c->data + c->start,
					d + out + (n - left), k) != 0)
					fail_msg("stream differs near %zu",
					    out + (n - left));
				left -= k;
				c = c->next;
			}
		}
		tp_chunkq_consume(&q, &p, n);
		out += n;
		wout = (wout * 5 + 11) % (2 * TP_CHUNK_SIZE) + 1;
		q_check(&q);
		assert_int_equal(q.bytes, in - out);
		assert_int_equal(p.live, q_nchunks(&q));
		assert_true(p.nfree <= 4);
	}
	assert_int_equal(in, total);
	assert_true(hin == hout);
	assert_true(hout == fnv1a(2166136261u, d, total));
	assert_int_equal(p.live, 0);
	free(d);
	tp_pool_destroy(&p);
}

static void
test_push(void **state)
{
	struct tp_chunkq q = {0};
	struct tp_pool p;
	struct tp_chunk *a, *b;

	(void)state;
	tp_pool_init(&p, 4);
	a = tp_chunk_get(&p);
	b = tp_chunk_get(&p);
	memcpy(a->data, "0123456789", 10);
	a->start = 2;
	a->end = 10;
	memcpy(b->data, "abc", 3);
	b->end = 3;
	b->next = a; /* stale link must be cleared */
	tp_chunkq_push(&q, a);
	tp_chunkq_push(&q, b);
	q_check(&q);
	assert_int_equal(q.bytes, 11);
	assert_ptr_equal(q.head, a);
	assert_ptr_equal(q.tail, b);
	assert_null(b->next);
	/* appended bytes go into b's free space, after "abc" */
	assert_int_equal(tp_chunkq_append(&q, &p, "de", 2), 0);
	assert_int_equal(q_nchunks(&q), 2);
	assert_memory_equal(b->data, "abcde", 5);
	tp_chunkq_consume(&q, &p, 8);
	assert_ptr_equal(q.head, b);
	assert_int_equal(q.bytes, 5);
	/* an empty pushed chunk is dropped when the consume reaches it */
	{
		struct tp_chunk *e = tp_chunk_get(&p);

		tp_chunkq_push(&q, e);
		assert_int_equal(q.bytes, 5);
		assert_int_equal(p.live, 2);
		tp_chunkq_consume(&q, &p, 5);
		assert_int_equal(q.bytes, 0);
	}
	tp_chunkq_clear(&q, &p);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(p.live, 0);
	tp_pool_destroy(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_basic),
	    cmocka_unit_test(test_pool_reuse),
	    cmocka_unit_test(test_pool_max_free),
	    cmocka_unit_test(test_pool_max_free_zero),
	    cmocka_unit_test(test_chunk_from_data),
	    cmocka_unit_test(test_append_small),
	    cmocka_unit_test(test_append_across_chunks),
	    cmocka_unit_test(test_append_one_big),
	    cmocka_unit_test(test_consume_partial),
	    cmocka_unit_test(test_consume_exact_chunk),
	    cmocka_unit_test(test_consume_whole),
	    cmocka_unit_test(test_stream_fifo),
	    cmocka_unit_test(test_push),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
