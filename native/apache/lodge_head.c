/*
 * lodge_head.c: a HEAD frame onto the request: status and headers, all
 * checked before any is applied, so that a bad one leaves Apache's own 502
 * page untouched by the rest.
 */
#include "lodge_head.h"

/*
 * The most response headers passed on, and the most bytes in one as sent
 * ("Name: value"): Apache's own defaults for a request's
 * (LimitRequestFields 100, LimitRequestFieldSize 8190). Each header is a
 * table entry in the Apache child; an app that needs more is broken or
 * hostile. (The whole HEAD frame is capped lower still: LODGE_HEAD_MAX.)
 */
#define LODGE_HEAD_FIELDS_MAX 100
#define LODGE_HEAD_FIELD_MAX 8190

/*
 * The first 64 bytes of what the app sent, for a log line; control
 * characters (a name that failed the token check may hold CR or LF) would
 * split or forge log lines, so they become '?'.
 */
static const char *clipped(apr_pool_t *p, const char *s, size_t n)
{
    char *out = apr_pstrmemdup(p, s, n > 64 ? 64 : n);
    char *c;

    for (c = out; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    return out;
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

/*
 * RFC 9110 field-value bytes: HTAB, SP, visible ASCII and obs-text; no
 * other control character (CR and LF would split the response, NUL cut
 * it, the rest confuse whatever reads it next).
 */
static int header_value_ok(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The value without the whitespace around it, which is not part of it. */
static void trim_value(lodge_pair *h)
{
    while (h->value_len > 0 && is_ows(h->value[0])) {
        h->value++;
        h->value_len--;
    }
    while (h->value_len > 0 && is_ows(h->value[h->value_len - 1])) {
        h->value_len--;
    }
}

static int is_header(const lodge_pair *h, const char *name)
{
    return strlen(name) == h->name_len
        && strncasecmp(h->name, name, h->name_len) == 0;
}

/*
 * Whether the comma-separated list in value names h (RFC 9110 section
 * 7.6.1: a Connection header names further hop-by-hop headers).
 */
static int listed_in(const char *value, size_t len, const lodge_pair *h)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (is_ows(value[i]) || value[i] == ',')) {
            i++;
        }
        start = i;
        while (i < len && value[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && is_ows(value[end - 1])) {
            end--;
        }
        if (end > start && end - start == h->name_len
            && strncasecmp(value + start, h->name, h->name_len) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Hop-by-hop (RFC 9110 section 7.6.1): about the connection to lodged or
 * the worker, not the one to the client. Upgrade too, except in the 101
 * that opens a tunnel, whose Upgrade and Connection (naming Upgrade) are
 * for the client's connection itself. And whatever the app's own
 * Connection headers name, looked up in the payload's pairs.
 */
static int is_hop_by_hop(const lodge_pair *h, const unsigned char *pairs,
                         size_t len, int upgrading)
{
    lodge_pairs it;
    lodge_pair c;

    if (upgrading && (is_header(h, "Connection") || is_header(h, "Upgrade"))) {
        return 0;
    }
    if (is_header(h, "Connection") || is_header(h, "Keep-Alive")
        || is_header(h, "Proxy-Connection") || is_header(h, "TE")
        || is_header(h, "Trailer") || is_header(h, "Transfer-Encoding")
        || is_header(h, "Upgrade")) {
        return 1;
    }
    lodge_pairs_init(&it, pairs, len);
    while (lodge_pairs_next(&it, &c) == 1) {
        if (is_header(&c, "Connection") && listed_in(c.value, c.value_len, h)) {
            return 1;
        }
    }
    return 0;
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
    int rv, count = 0, upgrading;

    if (len < 2) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00011)
                            "%s sent a HEAD frame of %lu bytes, too short "
                            "for a status", lodge_source(x), (unsigned long)len);
    }
    status = lodge_get_u16(p);
    /* 101 opens a tunnel, which only a TUNNEL request asked for. */
    upgrading = status == HTTP_SWITCHING_PROTOCOLS && x->tunnel;
    if ((status < 200 || status > 599) && !upgrading) {
        return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00012)
                            "%s sent response status %u; only 200-599 can "
                            "be passed on", lodge_source(x), status);
    }
    lodge_pairs_init(&it, p + 2, len - 2);
    while ((rv = lodge_pairs_next(&it, &h)) == 1) {
        if (++count > LODGE_HEAD_FIELDS_MAX) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00059)
                                "the app sent more than %d response headers",
                                LODGE_HEAD_FIELDS_MAX);
        }
        if (!header_name_ok(h.name, h.name_len)) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00013)
                                "the app sent a response header whose name is "
                                "not a token: '%s'",
                                clipped(r->pool, h.name, h.name_len));
        }
        if (h.name_len + 2 + h.value_len > LODGE_HEAD_FIELD_MAX) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00060)
                                "the app sent response header %s of %lu "
                                "bytes, over %d", clipped(r->pool, h.name,
                                                          h.name_len),
                                (unsigned long)(h.name_len + 2 + h.value_len),
                                LODGE_HEAD_FIELD_MAX);
        }
        if (!header_value_ok(h.value, h.value_len)) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00061)
                                "the app sent response header %s with a "
                                "control character in its value",
                                apr_pstrmemdup(r->pool, h.name, h.name_len));
        }
        trim_value(&h);
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
    x->answered = (int)status;
    /*
     * The framing of HTTP/1.1 gives these no body, whatever the app sends;
     * an answer to HEAD neither (2.4 drops that one itself, once counted).
     */
    x->bodyless = status == HTTP_NO_CONTENT || status == HTTP_NOT_MODIFIED
                  || !lodge_wants_body(r);
    lodge_pairs_init(&it, p + 2, len - 2);
    while (lodge_pairs_next(&it, &h) == 1) {
        if (is_hop_by_hop(&h, p + 2, len - 2, upgrading)) {
            continue;
        }
        trim_value(&h);
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
