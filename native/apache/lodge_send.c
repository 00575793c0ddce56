/*
 * lodge_send.c: the request, out. APP and REQ leave for lodged in one
 * write (with BODY_END when there is no body); a body goes to the worker
 * lodged lends (GRANT), a BODY frame per read, BODY_END with the last,
 * fed while the response is read (lodge_response.c), so that a worker
 * that answers before it has read the body never waits on mod_lodge while
 * mod_lodge waits on it.
 */
#include "lodge_send.h"
#include "lodge_environ.h"
#include "lodge_tunnel.h"

#include <poll.h>
#include <stdlib.h>

/*
 * Request body bytes per BODY frame: well under the protocol's 256 KiB,
 * big enough that an upload costs few writes on both sides.
 */
#define LODGE_BODY_CHUNK (64 * 1024)

/*
 * The least room a read of the body is given: 1.3 reads a chunk's size
 * line into the caller's buffer, and fails the request (400) when it does
 * not fit. A piece with less room left goes as it is.
 */
#define LODGE_READ_MIN 1024

/* The first write's buffer; APP and REQ of an ordinary request fit. */
#define LODGE_FIRST_SIZE 8192

/* Whether the client has sent more than Apache has read, right now. */
static int client_has_more(request_rec *r)
{
    struct pollfd p;

    p.fd = lodge_client_fd(r);
    p.events = POLLIN;
    p.revents = 0;
    return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

/*
 * Reads up to room bytes of the request body: what the client has sent so
 * far, not waiting for more once the socket is drained, so that a slow
 * upload reaches the app as it comes. Returns the count, or -1 when the
 * body could not be read; *done at its end.
 */
static long read_body(lodge_exchange *x, char *to, size_t room, int *done)
{
    request_rec *r = x->r;
    size_t got = 0;

    while (got == 0 || room - got >= LODGE_READ_MIN) {
        long n;

        lodge_client_timeout_reset(r);
        n = ap_get_client_block(r, to + got, room - got);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            *done = 1;
            break;
        }
        got += (size_t)n;
        x->body_read += n;
        /*
         * Both versions mark the end of the body here once they have seen
         * it, and the next call then returns 0 without waiting.
         */
        if (r->remaining < 0 || (!r->read_chunked && r->remaining == 0)) {
            continue;
        }
        if (!client_has_more(r)) {
            break;
        }
    }
    return (long)got;
}

static int body_failed(lodge_exchange *x)
{
    /*
     * The worker is told ABORT in place of BODY_END, or lodged sees the
     * close. The client's side failed: it is answered 400, even after the
     * response began.
     */
    int rv = lodge_record(x, HTTP_BAD_REQUEST, APLOG_INFO, LODGE_FINISH,
                          apr_psprintf(x->r->pool, LODGE_LOGNO(00004)
                                       "the request body could not be read "
                                       "from the client (after %s bytes); "
                                       "request dropped",
                                       lodge_count_text(x->r->pool,
                                                        x->body_read)));

    x->outcome.cut = 0;
    return rv;
}

/*
 * A status request's body (a form's POST) whole, as BODY and BODY_END after
 * the REQ: lodged reads it itself, and a page's form is small. Over max:
 * 413, without reading more of it (nor the rest, the connection closing).
 */
static int add_whole_body(lodge_exchange *x, size_t max)
{
    request_rec *r = x->r;
    lodge_buf *b = &x->first;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *body = apr_palloc(r->pool, max);
    char piece[8192];  /* more than LODGE_READ_MIN */
    size_t got = 0;

    if (cl != NULL && strtoll(cl, NULL, 10) > (long long)max) {
        got = max + 1;
    }
    while (got <= max && !x->body_done) {
        long n;

        lodge_client_timeout_reset(r);
        n = ap_get_client_block(r, piece, sizeof(piece));
        if (n < 0) {
            return body_failed(x);
        }
        x->body_done = n == 0;
        if (got + (size_t)n <= max) {
            memcpy(body + got, piece, (size_t)n);
        }
        got += (size_t)n;
        x->body_read += n;
    }
    if (got > max) {
        lodge_close_after(r, 0);
        return lodge_fail(r, HTTP_REQUEST_ENTITY_TOO_LARGE, LODGE_LOGNO(00065)
                          "a request body over %lu bytes for the status "
                          "location refused", (unsigned long)max);
    }
    if (got > 0) {
        size_t at = lodge_frame_open(b, LODGE_FRAME_BODY);

        memcpy(lodge_buf_extend(b, got), body, got);
        lodge_frame_close(b, at);
    }
    lodge_frame_add_empty(b, LODGE_FRAME_BODY_END);
    return OK;
}

/*
 * APP and REQ; with a body, the APP flag that borrows the worker, so that
 * the body goes straight to it and the response comes straight back. With
 * none, BODY_END, and lodged chooses: it carries the response, or lends
 * the worker (GRANT) to an app whose responses are large. The lease costs
 * a round trip more than lodged's hop, which only large bodies' copies
 * through lodged outweigh (see PROTOCOL.md). A WebSocket upgrade is
 * flagged TUNNEL and has no BODY_END: after a 101 the client's bytes go as
 * BODY frames (lodge_tunnel.c). The status location's and a dashboard's
 * requests are lodged's own, sent whole and never lent; a dashboard's are
 * never tunnelled (its page polls).
 */
int lodge_build_first(lodge_exchange *x)
{
    request_rec *r = x->r;
    lodge_buf *b = &x->first;
    int rv;

    lodge_buf_init(b, r->pool, LODGE_FIRST_SIZE);
    rv = x->dashboard ? lodge_add_dashboard_app(x)
       : x->status ? lodge_add_status_app(x) : lodge_add_app(x);
    if (rv != OK) {
        return rv;
    }
    lodge_add_req(x);

    rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rv != OK) {
        return rv;
    }
    x->body_done = !ap_should_client_block(r);
    /* APP is the first frame of the buffer. */
    if (x->body_done && !x->dashboard && lodge_wants_tunnel(r)) {
        x->tunnel = 1;
        x->input_open = 1;
        lodge_frame_set_flags(b, 0, LODGE_APP_TUNNEL);
    }
    else if (x->status || x->dashboard) {
        if ((rv = add_whole_body(x, LODGE_STATUS_BODY_MAX)) != OK) {
            return rv;
        }
    }
    else if (x->body_done) {
        lodge_frame_add_empty(b, LODGE_FRAME_BODY_END);
        lodge_frame_set_flags(b, 0, LODGE_APP_MAY_BORROW | LODGE_APP_ROUTE);
    }
    else {
        lodge_frame_set_flags(b, 0, LODGE_APP_BORROW | LODGE_APP_ROUTE);
    }
    if (b->failed) {
        return lodge_fail(r, HTTP_BAD_REQUEST, LODGE_LOGNO(00005)
                          "request too large for the frame protocol (a "
                          "name over 64 KiB or a frame over 16 MiB; app %s)",
                          x->dir->root);
    }
    return OK;
}

/*
 * The next piece of the body from the client (what it has sent so far, or
 * the first bytes it sends next), framed in x->chunk: a BODY frame, and
 * BODY_END after the last. OK, or the status of a failed read.
 */
static int next_piece(lodge_exchange *x)
{
    const size_t h = LODGE_FRAME_HEADER_SIZE;
    size_t len = 0;
    long n;

    if (x->chunk == NULL) {
        x->chunk = apr_palloc(x->r->pool, h + LODGE_BODY_CHUNK + h);
    }
    n = read_body(x, (char *)x->chunk + h, LODGE_BODY_CHUNK, &x->body_done);
    if (n < 0) {
        return body_failed(x);
    }
    if (n > 0) {
        lodge_frame_put_header(x->chunk, LODGE_FRAME_BODY, (size_t)n);
        len = h + (size_t)n;
    }
    if (x->body_done) {
        lodge_frame_put_header(x->chunk + len, LODGE_FRAME_BODY_END, 0);
        len += h;
    }
    x->body_streamed = 1;
    x->out_len = len;
    x->out_off = 0;
    return OK;
}

int lodge_body_sent(const lodge_exchange *x)
{
    return x->body_done && x->out_off == x->out_len;
}

/* Gives up on sending: the worker's socket failed, which reading it tells. */
static void stop_feeding(lodge_exchange *x)
{
    x->worker_broken = 1;
    x->body_done = 1;
    x->out_off = x->out_len;
}

int lodge_feed_body(lodge_exchange *x)
{
    ssize_t w;

    if (x->out_off == x->out_len) {
        int rv;

        if (x->body_done) {
            return OK;
        }
        if ((rv = next_piece(x)) != OK) {
            return rv;
        }
    }
    w = send(x->worker->fd, x->chunk + x->out_off, x->out_len - x->out_off,
             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
        x->out_off += (size_t)w;
    }
    else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK
             && errno != EINTR) {
        stop_feeding(x);
    }
    return OK;
}

int lodge_stream_body(lodge_exchange *x)
{
    while (!lodge_body_sent(x) && !x->worker_broken) {
        int rv;

        if (x->out_off == x->out_len && (rv = next_piece(x)) != OK) {
            return rv;
        }
        rv = lodge_conn_send(x->worker, x->chunk + x->out_off,
                             x->out_len - x->out_off);
        if (rv == -ETIMEDOUT) {
            return lodge_record(x, HTTP_GATEWAY_TIME_OUT, APLOG_ERR,
                                LODGE_RELEASE_TIMEOUT,
                                apr_psprintf(x->r->pool, LODGE_LOGNO(00006)
                                             "the app took no request body "
                                             "for LodgeTimeout %d s; its "
                                             "worker is stopped",
                                             x->worker_timeout));
        }
        if (rv != 0) {
            stop_feeding(x);
            return OK;
        }
        x->out_off = x->out_len;
    }
    return OK;
}

/* The first write, to lodged; the rest of the body waits for the GRANT. */
int lodge_send_request(lodge_exchange *x)
{
    int rv = lodge_conn_send(x->conn, x->first.data, x->first.len);

    if (rv == -ETIMEDOUT) {
        return lodge_broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00007)
                            "lodged took no request for %d s", x->timeout);
    }
    if (rv != 0) {
        x->conn_broken = 1;
    }
    return OK;
}
