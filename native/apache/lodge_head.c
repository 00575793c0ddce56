/*
 * lodge_head.c: a HEAD frame onto the request: status and headers, all
 * checked before any is applied, so that a bad one leaves Apache's own 502
 * page untouched by the rest.
 */
#include "lodge_head.h"

/* The first 64 bytes of what the app sent, for a log line. */
static const char *clipped(apr_pool_t *p, const char *s, size_t n)
{
    return apr_pstrmemdup(p, s, n > 64 ? 64 : n);
}

/* RFC 9110 token characters. */
static int header_name_ok(const char *p, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t i;

    for (i = 0; i < n; i++) {
        char c = p[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || (c && strchr(extra, c)))) {
            return 0;
        }
    }
    return n > 0;
}

static int header_value_ok(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') {
            return 0;
        }
    }
    return 1;
}

static int is_header(const lodge_pair *h, const char *name)
{
    return strlen(name) == h->name_len
        && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Hop-by-hop: about the connection to lodged, not the one to the client. */
static int is_hop_by_hop(const lodge_pair *h)
{
    return is_header(h, "Connection") || is_header(h, "Keep-Alive")
        || is_header(h, "Transfer-Encoding") || is_header(h, "Upgrade");
}

/* Content-Length: digits only, and few enough to fit. */
static long long content_length(const lodge_pair *h)
{
    long long v = 0;
    size_t i;

    if (h->value_len == 0 || h->value_len > 18) {
        return -1;
    }
    for (i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') {
            return -1;
        }
        v = v * 10 + (h->value[i] - '0');
    }
    return v;
}

/*
 * HEAD: status, then headers. All are checked before any is applied, so a
 * bad one leaves Apache's own 502 page untouched by the rest.
 */
int lodge_apply_head(lodge_exchange *x, const unsigned char *p, size_t len)
{
    request_rec *r = x->r;
    lodge_pairs it;
    lodge_pair h;
    unsigned status;
    int rv;

    if (len < 2) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00011)
                            "%s sent a HEAD frame of %lu bytes, too short "
                            "for a status", lodge_source(x), (unsigned long)len);
    }
    status = lodge_get_u16(p);
    if (status < 200 || status > 599) {
        return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00012)
                            "%s sent response status %u; only 200-599 can "
                            "be passed on", lodge_source(x), status);
    }
    lodge_pairs_init(&it, p + 2, len - 2);
    while ((rv = lodge_pairs_next(&it, &h)) == 1) {
        if (!header_name_ok(h.name, h.name_len)) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00013)
                                "the app sent a response header whose name is "
                                "not a token: '%s'",
                                clipped(r->pool, h.name, h.name_len));
        }
        if (!header_value_ok(h.value, h.value_len)) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00014)
                                "the app sent response header %s with a CR, LF "
                                "or NUL in its value",
                                apr_pstrmemdup(r->pool, h.name, h.name_len));
        }
        if (is_header(&h, "Content-Length") && content_length(&h) < 0) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00015)
                                "the app sent Content-Length '%s', not a "
                                "number", clipped(r->pool, h.value, h.value_len));
        }
    }
    if (rv < 0) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00016)
                            "%s sent a HEAD frame whose headers run past "
                            "its %lu bytes", lodge_source(x), (unsigned long)len);
    }

    r->status = (int)status;
    lodge_pairs_init(&it, p + 2, len - 2);
    while (lodge_pairs_next(&it, &h) == 1) {
        if (is_hop_by_hop(&h)) {
            continue;
        }
        if (is_header(&h, "Content-Type")) {
            lodge_set_content_type(r, apr_pstrmemdup(r->pool, h.value,
                                                     h.value_len));
        }
        else if (is_header(&h, "Content-Length")) {
            x->declared = content_length(&h);
            ap_set_content_length(r, x->declared);
        }
        else {
            apr_table_add(r->headers_out,
                          apr_pstrmemdup(r->pool, h.name, h.name_len),
                          apr_pstrmemdup(r->pool, h.value, h.value_len));
        }
    }
    /* The client sees the headers even if the body is slow to come. */
    x->unflushed = 1;
    return OK;
}
