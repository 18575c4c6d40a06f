/*
 * fuzz_dns_parse.c - DNS record data from a hostile server (dns_parse.c).
 * Byte 0 picks the record type; the rest is one rdata.  A name never
 * reads past the rdata nor writes past its buffer, a parsed name has no
 * empty label, no label over 63 octets and no upper case; MX and TLSA
 * parse exactly what they say; MX ordering keeps preference order and
 * never grows the list.
 */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tlsproxy/dns_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned
rnd(void *arg, unsigned n)
{
	unsigned *s = arg;

	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) % n;
}

static void
check_name(const char *s)
{
	size_t label = 0;

	for (; *s; s++) {
		assert(!isupper((unsigned char)*s));
		if (*s == '.') {
			assert(label > 0 && label <= 63);
			label = 0;
		} else {
			label++;
		}
	}
	assert(label <= 63);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[TP_HOST_MAX];
	struct tp_mx mx[8];
	unsigned char u, s, m;
	const unsigned char *assoc;
	size_t off = 0, alen, n = 0;
	unsigned seed = 1;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (tp_dns_name(data + 1, size - 1, &off, name, sizeof(name)) ==
		    0) {
			assert(off <= size - 1);
			assert(strlen(name) < sizeof(name));
			if (name[0])
				check_name(name);
		}
		break;
	case 1:
		/* several MX records, 1 + length byte each */
		for (size_t p = 1; p < size && n < 8;) {
			size_t l = data[p++];

			if (l > size - p)
				l = size - p;
			if (tp_dns_mx(data + p, l, &mx[n]) == 0) {
				check_name(mx[n].host);
				n++;
			}
			p += l;
		}
		size_t k = tp_dns_mx_order(mx, n, rnd, &seed);
		assert(k <= n);
		for (size_t i = 1; i < k; i++)
			assert(mx[i - 1].pref <= mx[i].pref);
		(void)tp_dns_null_mx(mx, k);
		break;
	default:
		if (tp_dns_tlsa(data + 1, size - 1, &u, &s, &m, &assoc,
			&alen) == 0) {
			assert(alen == size - 4);
			assert(assoc == data + 4);
			(void)tp_dns_tlsa_usable(u, s, m, alen);
		}
		break;
	}
	return 0;
}
