/*
 * fuzz_head.c: lodge_apply_head (lodge_head.c) on any HEAD payload, onto a
 * request faked from APR pieces. Properties: it returns OK or the status
 * of one refusal (through lodge_broken or lodge_refused, exactly once);
 * refused, the request is untouched (status, headers, type); accepted, the
 * status is 200-599, every header passed on has a token name and a value
 * free of CR, LF and NUL, no hop-by-hop header is passed on, and a
 * Content-Length passed on is the app's digits.
 */
#include "fuzz_stubs.h"
#include "lodge_head.h"

#include <apr_tables.h>
#include <strings.h>

static int token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int headers_fine(void *rec, const char *key, const char *value)
{
    const char *k;

    (void)rec;
    FUZZ_CHECK(*key != '\0');
    for (k = key; *k; k++) {
        FUZZ_CHECK(token_char((unsigned char)*k));
    }
    FUZZ_CHECK(strpbrk(value, "\r\n") == NULL);
    FUZZ_CHECK(strcasecmp(key, "Connection") != 0);
    FUZZ_CHECK(strcasecmp(key, "Transfer-Encoding") != 0);
    FUZZ_CHECK(strcasecmp(key, "Keep-Alive") != 0);
    FUZZ_CHECK(strcasecmp(key, "Upgrade") != 0);
    FUZZ_CHECK(strcasecmp(key, "Content-Length") != 0);
    FUZZ_CHECK(strcasecmp(key, "Content-Type") != 0);
    return 1;
}

/* Whether the payload's headers hold a NUL in a value the table would cut. */
static int any_nul(const unsigned char *p, size_t len)
{
    lodge_pairs it;
    lodge_pair h;

    lodge_pairs_init(&it, p + 2, len - 2);
    while (lodge_pairs_next(&it, &h) == 1) {
        if (memchr(h.value, '\0', h.value_len) || memchr(h.name, '\0', h.name_len)) {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    request_rec r;
    lodge_exchange x;
    int rv;

    memset(&r, 0, sizeof(r));
    memset(&x, 0, sizeof(x));
    r.pool = p;
    r.status = HTTP_OK;
    r.headers_out = apr_table_make(p, 4);
    r.clength = -7;
    x.r = &r;
    x.declared = -1;

    rv = lodge_apply_head(&x, data, size);
    if (rv != OK) {
        FUZZ_CHECK(fuzz_broken_calls + fuzz_refused_calls == 1);
        FUZZ_CHECK(rv == HTTP_BAD_GATEWAY);
        FUZZ_CHECK(r.status == HTTP_OK);
        FUZZ_CHECK(apr_is_empty_table(r.headers_out));
        FUZZ_CHECK(r.content_type == NULL);
        FUZZ_CHECK(r.clength == -7 && x.declared == -1);
        FUZZ_CHECK(!x.unflushed);
        return 0;
    }
    FUZZ_CHECK(fuzz_broken_calls + fuzz_refused_calls == 0);
    FUZZ_CHECK(size >= 2);
    FUZZ_CHECK(r.status >= 200 && r.status <= 599);
    FUZZ_CHECK(r.status == ((data[0] << 8) | data[1]));
    FUZZ_CHECK(!any_nul(data, size));
    FUZZ_CHECK(x.declared >= -1);
    FUZZ_CHECK(x.declared == -1 || r.clength == x.declared);
    FUZZ_CHECK(r.content_type == NULL || strpbrk(r.content_type, "\r\n") == NULL);
    apr_table_do(headers_fine, NULL, r.headers_out, NULL);
    return 0;
}
