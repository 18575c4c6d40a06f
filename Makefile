# tlsproxy - SMTP TLS proxy.  See README.md.
#
#   make            build build/tlsproxy
#   make run        install missing deps (root), build, run on etc/tlsproxy.ini
#   make check      install missing deps (root), unit + integration tests,
#                   plain and ASan+UBSan builds; ends with "N passed, N failed"
#   make bench      side-by-side benchmark against stunnel4
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libuv openssl inih

ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      = -O1
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2
endif

WARN    = -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	  -Wmissing-prototypes -Wvla -Wno-format-truncation -Werror
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 \
	    -DOPENSSL_NO_DEPRECATED
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 $(WARN) $(SANFLAGS) -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libunbound's .pc wants libevent's: link it directly
LDLIBS  += $(PKG_LIBS) -lunbound -lcurl -lpthread
LDFLAGS += $(SANFLAGS)

SRCS    = $(wildcard src/*.c)
OBJS    = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIBOBJS = $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# what the fuzz targets link: the pure SMTP and parsing modules
FUZZ_OBJS = $(filter $(BUILD)/obj/smtp_% $(BUILD)/obj/parse.o \
	    $(BUILD)/obj/proxy_proto.o $(BUILD)/obj/dns_parse.o \
	    $(BUILD)/obj/policy_map.o $(BUILD)/obj/tls_policy.o \
	    $(BUILD)/obj/mta_sts.o,$(OBJS))

# Debian packages: to build, and to run the tests and the benchmark.
DEBS_BUILD = gcc make pkg-config libuv1-dev libssl-dev libinih-dev openssl \
	     libunbound-dev libcurl4-openssl-dev
DEBS_TEST  = libcmocka-dev swaks postfix stunnel4 haproxy python3 curl procps testssl.sh \
	     iproute2 libnet-ssleay-perl libio-socket-ssl-perl man-db \
	     nsd ldnsutils unbound-host dns-root-data \
	     clang-format cppcheck

.PHONY: all deps deps-build run check check-slow check-unit check-asan bench install \
	clean format lint check-deps unit fuzz docs

all: $(BUILD)/tlsproxy

$(BUILD)/tlsproxy: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBOBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(LIBOBJS) \
	    $(LDFLAGS) $(LDLIBS) -lcmocka

# Fuzz targets built with a replay main: make check runs the committed
# corpus through them (make fuzz runs libFuzzer with clang).
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c \
    $(FUZZ_OBJS) | $(BUILD)/fuzz
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< \
	    tests/fuzz/replay_main.c $(FUZZ_OBJS) $(LDFLAGS)

$(BUILD)/fuzz:
	mkdir -p $@

unit: $(UNIT_BINS) $(FUZZ_BINS)

FUZZ_SECONDS ?= 60
fuzz:
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
	    -D_GNU_SOURCE $$f src/smtp_*.c src/parse.c src/proxy_proto.c \
	    src/dns_parse.c src/policy_map.c src/tls_policy.c src/mta_sts.c \
	    -o build/$$n-libfuzzer || exit 1; \
	  mkdir -p build/corpus-$$n; \
	  build/$$n-libfuzzer -max_total_time=$(FUZZ_SECONDS) \
	    build/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; \
	done

deps-build:
	@sh tests/deps.sh $(DEBS_BUILD)

deps: deps-build
	@sh tests/deps.sh $(DEBS_TEST)

run: deps-build all
	@sh tests/run-demo.sh $(BUILD)/tlsproxy etc/tlsproxy.ini

# The whole suite: plain build, then the ASan+UBSan build, each running
# every unit and integration test.  tests/run.sh prints the totals.
check: deps
	$(MAKE) lint
	$(MAKE) all unit
	$(MAKE) SAN=1 all unit
	sh tests/run.sh build build/asan

check-asan: deps
	$(MAKE) SAN=1 all unit
	sh tests/run.sh build/asan

# Slower checks that .ci/run also runs (tests/slow/run.sh, about 5 min):
# testssl.sh against default server routes (no vulnerable item, nothing
# below TLS 1.2, no weak cipher); the fault soak (soak.sh, 60 s of faults,
# with the ASan+UBSan build: no mail lost, a reply to every transaction);
# 8,000 idle TLS sessions (many-sessions.sh).  Ends with "N passed, N failed".
check-slow: deps all
	$(MAKE) SAN=1 all
	sh tests/slow/run.sh build build/asan

bench: deps all
	sh tests/bench/bench.sh $(BUILD)/tlsproxy

# man/tlsproxy.ini.5 and doc/tlsproxy.ini.5.md are generated from the key
# table (tlsproxy -M, -K); make check fails when they are out of date.
docs: $(BUILD)/tlsproxy
	$(BUILD)/tlsproxy -M > man/tlsproxy.ini.5
	$(BUILD)/tlsproxy -K > doc/tlsproxy.ini.5.md

# make install copies what make built (it never rebuilds, so it can run
# as root after an unprivileged make).
MANDIR ?= $(PREFIX)/share/man
install:
	@test -x $(BUILD)/tlsproxy || { echo "run make first"; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/etc/tlsproxy \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(BUILD)/tlsproxy $(DESTDIR)$(PREFIX)/sbin/tlsproxy
	test -e $(DESTDIR)$(PREFIX)/etc/tlsproxy/tlsproxy.ini || \
	    install -m 0644 etc/tlsproxy.ini \
	    $(DESTDIR)$(PREFIX)/etc/tlsproxy/tlsproxy.ini
	install -m 0644 man/tlsproxy.8 $(DESTDIR)$(MANDIR)/man8/tlsproxy.8
	install -m 0644 man/tlsproxy.ini.5 $(DESTDIR)$(MANDIR)/man5/tlsproxy.ini.5
	install -m 0644 man/tlsproxy-tls.1 $(DESTDIR)$(MANDIR)/man1/tlsproxy-tls.1
	sed 's|/usr/local|$(PREFIX)|g' etc/tlsproxy.service > \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/tlsproxy.service

format:
	clang-format -i src/*.c include/tlsproxy/*.h tests/unit/*.c

# The layer rules of ../shared/conventions.md (tests/lint/layers.py: no
# #include or call points up a layer), clang-format, cppcheck.
lint:
	sh tests/lint/run.sh

# The layer rules alone (../shared/conventions.md calls it check-deps).
check-deps:
	python3 tests/lint/layers.py

clean:
	rm -rf build

-include $(OBJS:.o=.d)
