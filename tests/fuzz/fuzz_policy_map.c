/*
 * fuzz_policy_map.c - a gateway's policy_file (policy_map.c) from
 * arbitrary text.  Input: the file; its last line, if any, also gives
 * names to look up.  The parser never reads past the input nor crashes;
 * the callback's counts are the map's; every entry has a lower-case key
 * found by an exact lookup; a domain entry is its own lookup; a lookup
 * returns nothing, the exact name, or a .parent entry the name ends
 * with, and no .parent entry nearer than the one returned exists; the
 * same lookup twice gives the same entry.
 */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tlsproxy/policy_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct counts {
	int errors, warnings;
};

static void
count(void *arg, int line, bool warning, const char *msg)
{
	struct counts *c = arg;

	assert(line >= 0 && msg != NULL);
	if (warning)
		c->warnings++;
	else
		c->errors++;
}

/* check_lookup - the rules of a lookup of NAME. */
static void
check_lookup(const struct tp_policy_map *m, const char *name)
{
	const struct tp_pm_entry *r = tp_policy_lookup(m, name), *x;
	char low[600];
	size_t n = strlen(name), kl;

	assert(r == tp_policy_lookup(m, name));
	if (n >= sizeof(low))
		return;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	if (n > 1 && low[n - 1] == '.')
		low[--n] = '\0';
	if (r == NULL) {
		/* then no exact domain entry either */
		x = tp_policy_lookup_key(m, low);
		assert(x == NULL || x->kind == TP_PM_PARENT || low[0] == '.');
		return;
	}
	kl = strlen(r->key);
	if (strcmp(r->key, low) == 0)
		return;
	assert(r->kind == TP_PM_PARENT);
	assert(n > kl && strcmp(low + n - kl, r->key) == 0);
	/* no exact entry, and no nearer parent */
	x = tp_policy_lookup_key(m, low);
	assert(x == NULL || x->kind != TP_PM_DOMAIN);
	for (const char *p = strchr(low + 1, '.'); p != NULL && strlen(p) > kl;
	     p = strchr(p + 1, '.'))
		assert(tp_policy_lookup_key(m, p) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct counts c = {0, 0};
	struct tp_policy_map *m;
	const char *text = (const char *)data, *last;
	char name[600];
	size_t ln;

	m = tp_policy_map_parse(text, size, count, &c);
	assert(m != NULL);
	assert(m->nerrors == c.errors && m->nwarnings == c.warnings);
	for (size_t i = 0; i < m->n; i++) {
		const struct tp_pm_entry *e = &m->e[i];

		for (const char *k = e->key; *k; k++)
			assert(!isupper((unsigned char)*k));
		assert(tp_policy_lookup_key(m, e->key) == e);
		assert(e->level >= 0 && e->level <= 7);
		if (e->kind == TP_PM_DOMAIN) {
			assert(tp_policy_lookup(m, e->key) == e);
		} else if (e->kind == TP_PM_PARENT) {
			assert(e->key[0] == '.');
			snprintf(name, sizeof(name), "x%s", e->key);
			check_lookup(m, name);
			assert(tp_policy_lookup(m, e->key + 1) !=
			    e); /* not the domain itself */
		}
		check_lookup(m, e->key);
	}
	/* the input's last line, and each of its suffixes, as names */
	last = memrchr(text, '\n', size);
	last = last ? last + 1 : text;
	ln = size - (size_t)(last - text);
	if (ln < sizeof(name) && memchr(last, '\0', ln) == NULL) {
		memcpy(name, last, ln);
		name[ln] = '\0';
		for (char *p = name; p != NULL && *p;
		     p = strchr(p + 1, '.'))
			check_lookup(m, p);
	}
	tp_policy_map_free(m);
	return 0;
}
