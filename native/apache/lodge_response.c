/*
 * lodge_response.c: lodged's answer, onto Apache.
 *
 *   HEAD    status and headers, all checked before any is applied
 *           (lodge_head.c)
 *   DATA    straight from the connection's buffer to the client
 *   END     the body checked against the app's Content-Length
 *   ERROR   Apache's own error page, or a cut-off response
 *   GRANT   lodged lends the worker: the rest of the body goes to it, and
 *           the response above comes from it (lodge_lease.c)
 *   ROUTE   lodged names the app's own socket instead (lodge_route.c)
 *   101     a HEAD that opens a tunnel (lodge_tunnel.c)
 *
 * Each way out returns the handler's value with how the exchange ended
 * recorded (lodge_exchange.h): in step after END, ERROR and ROUTE, else
 * as the failure says; lodge_run.c answers and lets go.
 *
 * The response is flushed to the client whenever lodged has nothing more
 * for the moment, so server-sent events and slow streams are never held,
 * while a response that arrives at once still leaves in one write.
 */
#include "lodge_response.h"
#include "lodge_head.h"
#include "lodge_lease.h"
#include "lodge_route.h"
#include "lodge_tunnel.h"

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
        n = x->worker != NULL ? lodge_lease_fill(x, result) : lodge_conn_fill(c, 1);
        if (n == LODGE_FEED_ANSWERED) {
            return 0;
        }
    }
    if (n > 0) {
        x->responded = 1;
        return 1;
    }
    if (x->worker != NULL) {
        *result = lodge_lease_failed(x, n);
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

/* A body that must match a Content-Length the app gave. */
static int length_checked(const lodge_exchange *x)
{
    return x->declared >= 0 && !x->bodyless && !x->r->header_only;
}

/*
 * Body for a response that has none (204, 304; HEAD on 1.3) is dropped:
 * written, a client on a kept connection would read it as the next
 * response. For HEAD that is ordinary (an app answers HEAD as GET); a 204
 * or 304 with a body is a broken response, so the connection closes after
 * it too.
 */
static void drop_body(lodge_exchange *x, size_t n)
{
    request_rec *r = x->r;

    if (!r->header_only && !x->overran) {
        x->overran = 1;
        lodge_close_after(r, x->committed);
        lodge_rlog(APLOG_WARNING, r, LODGE_LOGNO(00057)
                   "the app sent a body with status %d, which has none; "
                   "the body is dropped and the client's connection closed "
                   "after the response (app %s)", r->status, x->dir->root);
    }
    LODGE_IN(x)->pos += n;
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
        if (x->bodyless) {
            drop_body(x, n);
            len -= n;
            continue;
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
        if (lodge_write_body(r, c->buf + c->pos, n) != 0
            || r->connection->aborted) {
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
    /* No body was passed on (204, 304, HEAD, empty): 1.3 still needs the headers sent. */
    commit(x);
    lodge_in_step(x);
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
                            lodge_source(x), (unsigned long)len);
    }
    /*
     * A message for a log line of LODGE_LOG_MESSAGE_MAX bytes: one over
     * LODGE_ERROR_MAX would only be memory spent on the worker's say
     * (known from the length, so none of it is read).
     */
    if (len > LODGE_ERROR_MAX) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00062)
                            "%s sent an ERROR frame of %lu bytes, over the "
                            "%lu its message may take", lodge_source(x),
                            (unsigned long)len,
                            (unsigned long)LODGE_ERROR_MAX);
    }
    if ((p = payload(x, len, &result)) == NULL) {
        return result;
    }
    x->worker_done = x->worker != NULL;
    status = lodge_get_u16(p);
    retry_after = lodge_get_u16(p + 2);
    x->answered = status >= 400 && status <= 599 ? (int)status : HTTP_BAD_GATEWAY;
    /* A 503 with Retry-After is lodged shedding load (a tenant past its share, a full
     * queue): lodged logs those itself, at most once a second per app; one line per
     * refused request here would let a tenant's flood fill the host's log. */
    lodge_rlog(status == HTTP_SERVICE_UNAVAILABLE && retry_after > 0 ? APLOG_INFO : APLOG_ERR,
               r, LODGE_LOGNO(00020) "%s", lodge_loggable(r->pool, p + 4, len - 4));
    lodge_in_step(x);
    if (status < 400 || status > 599) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00021)
                   "%s sent ERROR status %u; answering 502 instead",
                   lodge_source(x), status);
        status = HTTP_BAD_GATEWAY;
    }
    if (x->committed) {
        /* What the client was given goes out before the cut. */
        (void)flush_client(x);
        lodge_client_timeout_end(r);
        x->outcome.cut = 1;
    }
    else if (retry_after > 0) {
        x->outcome.retry_after = apr_psprintf(r->pool, "%u", retry_after);
    }
    return (int)status;
}

static int unexpected(lodge_exchange *x, const lodge_frame_head *f,
                      int head_seen)
{
    return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00022)
                        "%s sent a frame of type 0x%02x (%s, %lu "
                        "bytes) %s", lodge_source(x), (unsigned)f->type,
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
                                lodge_source(x), lodge_frame_name(f.type),
                                (unsigned)f.type, f.length, LODGE_FRAME_MAX);
        }
        switch (f.type) {
        case LODGE_FRAME_HEAD:
            if (head_seen) {
                return unexpected(x, &f, head_seen);
            }
            if (f.length > LODGE_HEAD_MAX) {
                /* Known from the length: none of it is waited for or kept. */
                return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00058)
                                    "%s sent a HEAD frame of %lu bytes, over "
                                    "the %lu a response's headers may take",
                                    lodge_source(x), f.length,
                                    (unsigned long)LODGE_HEAD_MAX);
            }
            if ((p = payload(x, f.length, &result)) == NULL) {
                return result;
            }
            if ((rv = lodge_apply_head(x, p, f.length)) != OK) {
                return rv;
            }
            if (x->r->status == HTTP_SWITCHING_PROTOCOLS) {
                return lodge_tunnel_relay(x);
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
        case LODGE_FRAME_ROUTE:
            /* From lodged, instead of an answer: the app takes it itself. */
            if (x->worker != NULL || head_seen) {
                return unexpected(x, &f, head_seen);
            }
            if ((p = payload(x, f.length, &result)) == NULL) {
                return result;
            }
            return lodge_route_take(x, p, f.length);
        default:
            return unexpected(x, &f, head_seen);
        }
    }
}
