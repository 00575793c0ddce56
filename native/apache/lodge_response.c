/*
 * lodge_response.c: lodged's answer, onto Apache.
 *
 *   HEAD    status and headers, all checked before any is applied
 *   DATA    straight from the connection's buffer to the client
 *   END     the body checked against the app's Content-Length
 *   ERROR   Apache's own error page, or a cut-off response
 *   GRANT   lodged lends the worker: the rest of the body goes to it, and
 *           the response above comes from it (lodge_lease.c)
 *
 * The response is flushed to the client whenever lodged has nothing more
 * for the moment, so server-sent events and slow streams are never held,
 * while a response that arrives at once still leaves in one write.
 */
#include "lodge_response.h"
#include "lodge_lease.h"
#include "lodge_send.h"

#include <poll.h>


/* Who the response comes from, for the log. */
static const char *source(const lodge_exchange *x)
{
    return x->worker != NULL ? "the app's worker" : "lodged";
}

/*
 * After a clean END or ERROR: the lent worker is handed back, and the
 * connection goes back to the free list, if nothing is left over.
 */
static void give_back(lodge_exchange *x)
{
    lodge_conn *c = LODGE_IN(x);

    if (c == NULL) {
        return;
    }
    if (c->pos != c->end) {
        lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00001)
                   "%s sent %lu bytes after the end of the response "
                   "(app %s); connection closed", source(x),
                   (unsigned long)(c->end - c->pos), x->dir->root);
        if (x->worker != NULL) {
            (void)lodge_lease_end(x, LODGE_RELEASE_BROKEN);
        }
        lodge_drop(x);
        return;
    }
    if (x->worker != NULL) {
        /* An answer before the whole body: the rest goes, the idle worker drops it. */
        if (!lodge_body_sent(x)) {
            (void)lodge_stream_body(x);
        }
        if (x->worker != NULL) {
            (void)lodge_lease_end(x, x->worker_broken ? LODGE_RELEASE_BROKEN
                                                      : LODGE_RELEASE_DONE);
        }
        return;
    }
    if (x->conn_broken) {
        lodge_drop(x);
        return;
    }
    x->conn = NULL;
    lodge_conn_give_back(c);
}

static void commit(lodge_exchange *x)
{
    if (!x->committed) {
        x->committed = 1;
        lodge_send_headers(x->r);
    }
}

static int flush_client(lodge_exchange *x)
{
    commit(x);
    lodge_client_timeout(x->r, "lodge: sending the response");
    x->unflushed = 0;
    return ap_rflush(x->r) < 0 || x->r->connection->aborted ? -1 : 0;
}

/* Not an errno: feeding the body failed, and *result holds the answer. */
#define LODGE_FEED_ANSWERED (-100000L)

/*
 * Waits for the lent worker's response while feeding it the body, as the
 * worker is ready for either: one that answers before it has read the body,
 * or streams while it reads, never waits on mod_lodge while mod_lodge waits
 * on it. No progress either way for the GRANT's timeout is -ETIMEDOUT.
 */
static long fill_feeding(lodge_exchange *x, int *result)
{
    lodge_conn *w = x->worker;

    for (;;) {
        struct pollfd p;
        int rv;

        if (lodge_body_sent(x)) {
            return lodge_conn_fill(w, 1);
        }
        p.fd = w->fd;
        p.events = POLLIN | POLLOUT;
        p.revents = 0;
        rv = poll(&p, 1, x->worker_timeout * 1000);
        if (rv == 0) {
            return -ETIMEDOUT;
        }
        if (rv < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            long n = lodge_conn_fill(w, 0);

            if (n != -EAGAIN) {
                return n;
            }
            continue;
        }
        /* Writable: body until the socket is full or the body all out. */
        do {
            if ((rv = lodge_feed_body(x)) != OK) {
                *result = rv;
                return LODGE_FEED_ANSWERED;
            }
        } while (x->out_off == x->out_len && !x->body_done);
    }
}

/*
 * A read from the lent worker failed: it closed its socket (lodged says
 * why: a crash, a watchdog), or it made no progress within its timeout.
 */
static int worker_failed(lodge_exchange *x, long n)
{
    int status;

    if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
        status = lodge_lease_end(x, LODGE_RELEASE_LOST);
        if (status == 0) {
            lodge_rlog(APLOG_ERR, x->r, LODGE_LOGNO(00053)
                       "the app's worker (pid %s) went away during the "
                       "request (app %s)", x->worker_pid, x->dir->root);
            status = HTTP_BAD_GATEWAY;
        }
        lodge_drop(x);
        if (x->committed) {
            lodge_abort_client(x->r);
            return OK;
        }
        return status;
    }
    if (n == -ETIMEDOUT) {
        int secs = x->worker_timeout;

        (void)lodge_lease_end(x, LODGE_RELEASE_TIMEOUT);
        return lodge_broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00054)
                            "the app made no progress for LodgeTimeout %d s; "
                            "its worker is stopped", secs);
    }
    return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00055)
                        "reading from the app's worker failed: %s",
                        lodge_errstr(x->r->pool, (int)-n));
}

/*
 * More bytes from lodged into the connection's buffer. When none are
 * there yet, what the client was given is flushed before waiting. Returns
 * 1 when bytes came; 0 when the exchange is over, with the handler's
 * return value in *result.
 */
static int more(lodge_exchange *x, int *result)
{
    lodge_conn *c = LODGE_IN(x);
    long n = -EAGAIN;

    if (x->unflushed) {
        n = lodge_conn_fill(c, 0);
        if (n == -EAGAIN && flush_client(x) != 0) {
            *result = lodge_client_gone(x, "during the response");
            return 0;
        }
    }
    if (n == -EAGAIN) {
        /* Waiting on the app is bounded by its timeout, not the client's. */
        lodge_client_timeout_end(x->r);
        n = x->worker != NULL ? fill_feeding(x, result) : lodge_conn_fill(c, 1);
        if (n == LODGE_FEED_ANSWERED) {
            return 0;
        }
    }
    if (n > 0) {
        x->responded = 1;
        return 1;
    }
    if (x->worker != NULL) {
        *result = worker_failed(x, n);
    }
    else if (!x->responded && (n == 0 || n == -ECONNRESET || n == -EPIPE)) {
        *result = LODGE_AGAIN;
    }
    else if (n == 0) {
        *result = lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00008)
                               "lodged closed the connection in the middle of "
                               "the response");
    }
    else if (n == -ETIMEDOUT) {
        *result = lodge_broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00009)
                               "lodged sent nothing for %d s", x->timeout);
    }
    else {
        *result = lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00010)
                               "reading from lodged failed: %s",
                               lodge_errstr(x->r->pool, (int)-n));
    }
    return 0;
}

/* Until n unread bytes are in the buffer (n <= LODGE_CONN_BUFSIZE). */
static int need(lodge_exchange *x, size_t n, int *result)
{
    while (LODGE_IN(x)->end - LODGE_IN(x)->pos < n) {
        if (!more(x, result)) {
            return 0;
        }
    }
    return 1;
}

/* A whole payload, in the buffer if it fits, else in the request pool. */
static const unsigned char *payload(lodge_exchange *x, size_t len,
                                    int *result)
{
    lodge_conn *c = LODGE_IN(x);
    unsigned char *to;
    size_t copied = 0;

    if (len <= LODGE_CONN_BUFSIZE) {
        const unsigned char *p;

        if (!need(x, len, result)) {
            return NULL;
        }
        p = c->buf + c->pos;
        c->pos += len;
        return p;
    }
    to = apr_palloc(x->r->pool, len);
    while (copied < len) {
        size_t take = c->end - c->pos;

        if (take == 0) {
            if (!more(x, result)) {
                return NULL;
            }
            continue;
        }
        if (take > len - copied) {
            take = len - copied;
        }
        memcpy(to + copied, c->buf + c->pos, take);
        c->pos += take;
        copied += take;
    }
    return to;
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
static int apply_head(lodge_exchange *x, const unsigned char *p, size_t len)
{
    request_rec *r = x->r;
    lodge_pairs it;
    lodge_pair h;
    unsigned status;
    int rv;

    if (len < 2) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00011)
                            "%s sent a HEAD frame of %lu bytes, too short "
                            "for a status", source(x), (unsigned long)len);
    }
    status = lodge_get_u16(p);
    if (status < 200 || status > 599) {
        return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00012)
                            "%s sent response status %u; only 200-599 can "
                            "be passed on", source(x), status);
    }
    lodge_pairs_init(&it, p + 2, len - 2);
    while ((rv = lodge_pairs_next(&it, &h)) == 1) {
        if (!header_name_ok(h.name, h.name_len)) {
            return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00013)
                                "the app sent a response header whose name is "
                                "not a token: '%s'",
                                apr_pstrmemdup(r->pool, h.name,
                                               h.name_len > 64
                                               ? 64 : h.name_len));
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
                                "number",
                                apr_pstrmemdup(r->pool, h.value,
                                               h.value_len > 64
                                               ? 64 : h.value_len));
        }
    }
    if (rv < 0) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00016)
                            "%s sent a HEAD frame whose headers run past "
                            "its %lu bytes", source(x), (unsigned long)len);
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

/* A body that must match a Content-Length the app gave. */
static int length_checked(const lodge_exchange *x)
{
    const request_rec *r = x->r;

    return x->declared >= 0 && !r->header_only
        && r->status != HTTP_NO_CONTENT && r->status != HTTP_NOT_MODIFIED;
}

/* DATA: straight from the connection's buffer to the client, in pieces. */
static int pass_data(lodge_exchange *x, size_t len, int *result)
{
    request_rec *r = x->r;
    lodge_conn *c = LODGE_IN(x);

    for (; len > 0; x->frame_left = len) {
        size_t n;

        x->frame_left = len;
        n = c->end - c->pos;

        if (n == 0) {
            if (!more(x, result)) {
                return 0;
            }
            continue;
        }
        if (n > len) {
            n = len;
        }
        if (length_checked(x) && x->sent + (long long)n > x->declared) {
            *result = lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00017)
                                   "the app sent more than its Content-Length "
                                   "of %s bytes",
                                   lodge_count_text(r->pool, x->declared));
            return 0;
        }
        /* After commit: 1.3 disarms every timeout once the headers are out. */
        commit(x);
        lodge_client_timeout(r, "lodge: sending the response");
        if (lodge_wants_body(r)
            && (lodge_write_body(r, c->buf + c->pos, n) != 0
                || r->connection->aborted)) {
            *result = lodge_client_gone(x, "during the response");
            return 0;
        }
        c->pos += n;
        len -= n;
        x->sent += (long long)n;
        x->unflushed = 1;
    }
    x->frame_left = 0;
    return 1;
}

static int at_end(lodge_exchange *x)
{
    if (length_checked(x) && x->sent != x->declared) {
        return lodge_refused(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00018)
                            "the app sent %s bytes after a Content-Length "
                            "of %s", lodge_count_text(x->r->pool, x->sent),
                            lodge_count_text(x->r->pool, x->declared));
    }
    give_back(x);
    return OK;
}

/*
 * ERROR: before the client has seen anything, Apache answers the status
 * with its own page; after, the response is cut off. Either way the
 * exchange is over and the connection is clean.
 */
static int error_frame(lodge_exchange *x, size_t len)
{
    request_rec *r = x->r;
    const unsigned char *p;
    unsigned status, retry_after;
    int result;

    if (len < 4) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00019)
                            "%s sent an ERROR frame of %lu bytes, too "
                            "short for a status and Retry-After",
                            source(x), (unsigned long)len);
    }
    if ((p = payload(x, len, &result)) == NULL) {
        return result;
    }
    x->worker_done = x->worker != NULL;
    status = lodge_get_u16(p);
    retry_after = lodge_get_u16(p + 2);
    lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00020) "%s",
               lodge_loggable(r->pool, p + 4, len - 4));
    give_back(x);
    if (status < 400 || status > 599) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00021)
                   "%s sent ERROR status %u; answering 502 instead",
                   source(x), status);
        status = HTTP_BAD_GATEWAY;
    }
    if (x->committed) {
        if (flush_client(x) == 0) {
            lodge_abort_client(r);
        }
        return OK;
    }
    if (retry_after > 0) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%u", retry_after));
    }
    return (int)status;
}

static int unexpected(lodge_exchange *x, const lodge_frame_head *f,
                      int head_seen)
{
    return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00022)
                        "%s sent a frame of type 0x%02x (%s, %lu "
                        "bytes) %s", source(x), (unsigned)f->type,
                        lodge_frame_name(f->type), f->length,
                        head_seen ? "after HEAD"
                                  : "where HEAD or ERROR belongs");
}

int lodge_read_response(lodge_exchange *x)
{
    int head_seen = 0;
    int result, rv;

    for (;;) {
        lodge_frame_head f;
        const unsigned char *p;

        if (!need(x, LODGE_FRAME_HEADER_SIZE, &result)) {
            return result;
        }
        rv = lodge_frame_get_header(LODGE_IN(x)->buf + LODGE_IN(x)->pos, &f);
        LODGE_IN(x)->pos += LODGE_FRAME_HEADER_SIZE;
        if (rv != 0) {
            return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00023)
                                "%s sent a %s frame (type 0x%02x) of %lu "
                                "bytes, over the %lu-byte limit",
                                source(x), lodge_frame_name(f.type),
                                (unsigned)f.type, f.length, LODGE_FRAME_MAX);
        }
        switch (f.type) {
        case LODGE_FRAME_HEAD:
            if (head_seen) {
                return unexpected(x, &f, head_seen);
            }
            if ((p = payload(x, f.length, &result)) == NULL) {
                return result;
            }
            if ((rv = apply_head(x, p, f.length)) != OK) {
                return rv;
            }
            head_seen = 1;
            break;
        case LODGE_FRAME_DATA:
            if (!head_seen) {
                return unexpected(x, &f, head_seen);
            }
            if (!pass_data(x, f.length, &result)) {
                return result;
            }
            break;
        case LODGE_FRAME_END:
            if (!head_seen || f.length != 0) {
                return unexpected(x, &f, head_seen);
            }
            x->worker_done = x->worker != NULL;
            return at_end(x);
        case LODGE_FRAME_ERROR:
            return error_frame(x, f.length);
        case LODGE_FRAME_GRANT:
            /* From lodged, once: the rest comes from the worker. */
            if (x->worker != NULL || head_seen) {
                return unexpected(x, &f, head_seen);
            }
            if ((p = payload(x, f.length, &result)) == NULL) {
                return result;
            }
            /* The body is fed as the response is waited for (more()). */
            if ((rv = lodge_lease_begin(x, p, f.length)) != OK) {
                return rv;
            }
            break;
        default:
            return unexpected(x, &f, head_seen);
        }
    }
}
