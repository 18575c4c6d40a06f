/*
 * fuzz_mta_sts.c - MTA-STS (mta_sts.c) from arbitrary bytes; the whole
 * input goes through every parser.  As a policy: never read past the
 * input; a parsed policy keeps the rules (mode, max_age bound, mx needed
 * unless none, patterns lower case and each matched by its own names),
 * and the round trip holds: formatted as a cache entry and read back,
 * its text parses to the same policy.  As TXT records (the input's
 * lines): the choice among them is the same from text and from rdata
 * (the lines cut into character-strings of the first byte's size), and
 * an id is 1-32 letters and digits.  As a cache file: the reader always
 * moves on and ends, every entry lies inside the input, and every entry
 * whose text parses survives its own round trip.
 */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/mta_sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECS 16

static void
check_id(const char *id)
{
	size_t n = strlen(id);

	assert(n >= 1 && n <= TP_MTA_STS_ID_MAX);
	for (size_t i = 0; i < n; i++)
		assert(isalnum((unsigned char)id[i]));
}

static void
same_policy(
    const struct tp_mta_sts_policy *a, const struct tp_mta_sts_policy *b)
{
	assert(a->mode == b->mode);
	assert(a->max_age == b->max_age);
	assert(a->fetched == b->fetched);
	assert(strcmp(a->id, b->id) == 0);
	assert(a->nmx == b->nmx);
	for (size_t i = 0; i < a->nmx; i++)
		assert(strcmp(a->mx[i], b->mx[i]) == 0);
	assert(a->text_len == b->text_len);
	assert(memcmp(a->text, b->text, a->text_len) == 0);
}

/*
 * roundtrip - P as the cache entry of DOMAIN, read back: one entry, the
 * same fields, a text that parses to the same policy.
 */
static void
roundtrip(const char *domain, const struct tp_mta_sts_policy *p)
{
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	const struct tp_mta_sts_policy *q;
	size_t need, len;
	char *buf, err[TP_MTA_STS_ERR_SIZE];
	int rc;

	rc = tp_mta_sts_cache_format(NULL, 0, &need, domain, p);
	if (rc == TP_MTA_STS_EINVAL)
		return;
	assert(rc == TP_MTA_STS_ENOSPC && need > p->text_len);
	buf = malloc(need + 1);
	assert(buf != NULL);
	assert(tp_mta_sts_cache_format(buf, need + 1, &len, domain, p) == 0);
	assert(len == need && buf[len] == '\0');
	tp_mta_sts_cache_reader_init(&r, buf, len);
	assert(tp_mta_sts_cache_next(&r, &e, err, sizeof(err)) == 1);
	assert(strcmp(e.id, p->id) == 0 && e.fetched == p->fetched);
	assert(e.text_len == p->text_len);
	assert(memcmp(e.text, p->text, e.text_len) == 0);
	assert(e.line == 1);
	assert(tp_mta_sts_policy_parse(e.text, e.text_len, e.id, e.fetched, &q,
		   err, sizeof(err)) == 0);
	same_policy(p, q);
	tp_mta_sts_policy_free(q);
	assert(tp_mta_sts_cache_next(&r, &e, err, sizeof(err)) == 0);
	free(buf);
}

/* check_policy - the rules of a parsed policy. */
static void
check_policy(const struct tp_mta_sts_policy *p)
{
	char name[TP_MTA_STS_NAME_MAX + 8];

	assert(p->mode < TP_MTA_STS_MODES);
	assert(p->max_age <= TP_MTA_STS_MAX_AGE_MAX);
	assert(p->nmx > 0 || p->mode == TP_MTA_STS_MODE_NONE);
	assert(p->text[p->text_len] == '\0');
	assert(memchr(p->text, '\0', p->text_len) == NULL);
	check_id(p->id);
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];
		size_t n = strlen(m);

		assert(n > 0 && n <= TP_MTA_STS_NAME_MAX && m[n - 1] != '.');
		for (size_t j = 0; j < n; j++)
			assert(!isupper((unsigned char)m[j]) &&
			    (isalnum((unsigned char)m[j]) || m[j] == '-' ||
				m[j] == '.' || (j == 0 && m[j] == '*')));
		if (m[0] == '*') {
			assert(m[1] == '.');
			snprintf(name, sizeof(name), "X%s", m + 1);
			assert(tp_mta_sts_mx_match(m, name));
			assert(tp_mta_sts_policy_match(p, name) != NULL);
			assert(!tp_mta_sts_mx_match(m, m + 2));
			snprintf(name, sizeof(name), "a.b%s", m + 1);
			assert(!tp_mta_sts_mx_match(m, name));
		} else {
			assert(tp_mta_sts_mx_match(m, m));
			snprintf(name, sizeof(name), "%s.", m);
			name[0] = (char)toupper((unsigned char)name[0]);
			assert(tp_mta_sts_mx_match(m, name));
			assert(tp_mta_sts_policy_match(p, m) != NULL);
		}
	}
	roundtrip("example.com", p);
	roundtrip("Sub.Example.NET.", p);
}

/* txt_wire - the record's text as rdata, in strings of CHUNK bytes. */
static size_t
txt_wire(const char *s, size_t len, size_t chunk, unsigned char *out)
{
	size_t n = 0;

	do {
		size_t k = len < chunk ? len : chunk;

		out[n++] = (unsigned char)k;
		memcpy(out + n, s, k);
		n += k;
		s += k;
		len -= k;
	} while (len > 0);
	return n;
}

/* check_txt - the input's lines as TXT records. */
static void
check_txt(const char *text, size_t size)
{
	const char *recs[MAX_RECS];
	size_t lens[MAX_RECS], n = 0, off = 0, chunk;
	char *wire[MAX_RECS + 1];
	int wlen[MAX_RECS];
	char id1[TP_MTA_STS_ID_SIZE], id2[TP_MTA_STS_ID_SIZE];
	const char *why1 = NULL, *why2 = NULL;
	int rc1, rc2;

	rc1 = tp_mta_sts_txt_parse(text, size, id1, &why1);
	assert(
	    rc1 == 0 || rc1 == TP_MTA_STS_ENOREC || rc1 == TP_MTA_STS_EINVAL);
	if (rc1 == 0)
		check_id(id1);
	else if (rc1 == TP_MTA_STS_EINVAL)
		assert(why1 != NULL);

	while (off < size && n < MAX_RECS) {
		const char *nl = memchr(text + off, '\n', size - off);
		size_t l = nl ? (size_t)(nl - text - off) : size - off;

		recs[n] = text + off;
		lens[n++] = l;
		off += l + 1;
	}
	rc1 = tp_mta_sts_txt_select(recs, lens, n, id1, &why1);
	assert(rc1 <= 0);
	if (rc1 == 0)
		check_id(id1);
	else
		assert(why1 != NULL);

	chunk = size > 0 ? (unsigned char)text[0] : 1;
	if (chunk == 0)
		chunk = 255;
	for (size_t i = 0; i < n; i++) {
		wire[i] = malloc(lens[i] + lens[i] / chunk + 2);
		assert(wire[i] != NULL);
		wlen[i] = (int)txt_wire(
		    recs[i], lens[i], chunk, (unsigned char *)wire[i]);
	}
	wire[n] = NULL;
	rc2 = tp_mta_sts_txt_select_rdata(wire, wlen, id2, &why2);
	assert(rc1 == rc2);
	if (rc1 == 0)
		assert(strcmp(id1, id2) == 0);
	for (size_t i = 0; i < n; i++)
		free(wire[i]);
}

/* check_cache - the input as an mta_sts_cache file. */
static void
check_cache(const char *text, size_t size)
{
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry e;
	const struct tp_mta_sts_policy *p;
	char err[TP_MTA_STS_ERR_SIZE];
	size_t last = 0;
	int rc;

	tp_mta_sts_cache_reader_init(&r, text, size);
	for (;;) {
		rc = tp_mta_sts_cache_next(&r, &e, err, sizeof(err));
		if (rc == 0)
			break;
		/* every call but the last consumes input */
		assert(r.off > last);
		assert(r.off <= size);
		last = r.off;
		if (rc < 0) {
			assert(rc == TP_MTA_STS_EINVAL);
			assert(strncmp(err, "line ", 5) == 0);
			assert(strlen(err) < sizeof(err) - 1);
			continue;
		}
		assert(rc == 1);
		assert(e.text >= text && e.text + e.text_len < text + size);
		assert(e.text[e.text_len] == '\n');
		check_id(e.id);
		assert(e.fetched >= 0 && e.fetched <= TP_MTA_STS_TIME_MAX);
		if (tp_mta_sts_policy_parse(e.text, e.text_len, e.id, e.fetched,
			&p, err, sizeof(err)) == 0) {
			roundtrip(e.domain, p);
			tp_mta_sts_policy_free(p);
		}
	}
	assert(r.off >= size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const struct tp_mta_sts_policy *p = NULL;
	char err[TP_MTA_STS_ERR_SIZE];
	int64_t fetched = (int64_t)(size * 2654435761u) % TP_MTA_STS_TIME_MAX;
	int rc;

	rc = tp_mta_sts_policy_parse(
	    text, size, "fuzz1", fetched, &p, err, sizeof(err));
	if (rc == 0) {
		assert(p != NULL && p->fetched == fetched);
		check_policy(p);
		tp_mta_sts_policy_free(p);
	} else {
		assert(rc == TP_MTA_STS_EINVAL && p == NULL);
		assert(err[0] != '\0' && strlen(err) < sizeof(err) - 1);
	}
	check_txt(text, size);
	check_cache(text, size);
	return 0;
}
