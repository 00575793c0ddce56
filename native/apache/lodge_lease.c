/*
 * lodge_lease.c: the worker lodged lends for one request. See lodge_lease.h
 * and PROTOCOL.md ("Borrowing the worker").
 */
#include "lodge_lease.h"
#include "lodge_send.h"

#include <poll.h>
#include <unistd.h>

/* LODGE_ABORT_GRACE, LODGE_DRAIN_MAX, LODGE_VERDICT_WAIT: lodge_protocol.h. */

/* Not an errno: the drain read LODGE_DRAIN_MAX bytes and no end. */
#define LODGE_DRAIN_OVER (-100001L)

int lodge_lease_begin(lodge_exchange *x, const unsigned char *payload,
                      size_t len)
{
    lodge_conn *c = x->conn;
    lodge_pairs it;
    lodge_pair p;
    int fd = c->passed_fd, rv;
    long timeout = 0;

    c->passed_fd = -1;
    if (fd < 0) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00048)
                            "lodged sent GRANT without the worker's socket");
    }
    lodge_pairs_init(&it, payload, len);
    while ((rv = lodge_pairs_next(&it, &p)) == 1) {
        if (p.name_len == 7 && memcmp(p.name, "timeout", 7) == 0) {
            timeout = strtol(apr_pstrmemdup(x->r->pool, p.value, p.value_len),
                             NULL, 10);
        }
        else if (p.name_len == 3 && memcmp(p.name, "pid", 3) == 0) {
            x->worker_pid = apr_pstrmemdup(x->r->pool, p.value, p.value_len);
        }
    }
    if (rv < 0 || timeout <= 0 || timeout > 86400) {
        close(fd);
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00049)
                            "lodged sent an unreadable GRANT (timeout %ld)",
                            timeout);
    }
    rv = lodge_conn_adopt(fd, 1, &x->worker);
    if (rv != 0) {
        close(fd);
        return lodge_broken(x, HTTP_INTERNAL_SERVER_ERROR, LODGE_LOGNO(00050)
                            "cannot take the worker's socket: %s",
                            lodge_errstr(x->r->pool, -rv));
    }
    x->worker_timeout = (int)timeout;
    (void)lodge_conn_set_timeout(x->worker, (int)timeout);
    return OK;
}

/* lodged's ERROR after RELEASE(LOST): its status, or 0 if none came. */
static int read_verdict(lodge_exchange *x)
{
    lodge_conn *c = x->conn;
    lodge_frame_head f;
    unsigned status;

    (void)lodge_conn_set_timeout(c, LODGE_VERDICT_WAIT);
    while (c->end - c->pos < LODGE_FRAME_HEADER_SIZE) {
        if (lodge_conn_fill(c, 1) <= 0) {
            return 0;
        }
    }
    if (lodge_frame_get_header(c->buf + c->pos, &f) != 0
        || f.type != LODGE_FRAME_ERROR || f.length < 4
        || f.length > LODGE_CONN_BUFSIZE - LODGE_FRAME_HEADER_SIZE) {
        return 0;
    }
    while (c->end - c->pos < LODGE_FRAME_HEADER_SIZE + f.length) {
        if (lodge_conn_fill(c, 1) <= 0) {
            return 0;
        }
    }
    c->pos += LODGE_FRAME_HEADER_SIZE;
    status = lodge_get_u16(c->buf + c->pos);
    lodge_rlog(APLOG_ERR, x->r, LODGE_LOGNO(00051) "%s",
               lodge_loggable(x->r->pool, c->buf + c->pos + 4, f.length - 4));
    c->pos += f.length;
    return status >= 400 && status <= 599 ? (int)status : HTTP_BAD_GATEWAY;
}

/*
 * The frame that ends a lease (RELEASE), or that tells lodged of a request
 * sent straight to the app that failed (VERDICT, on a connection taken for
 * it; never for DONE): by the pid ACCEPTED gave, or, when none came, by the
 * REQ's ticket and the app's socket. Its length, or 0 when nothing is to be
 * sent. f has room for LODGE_VERDICT_MAX bytes.
 */
#define LODGE_VERDICT_MAX (LODGE_FRAME_HEADER_SIZE + LODGE_VERDICT_PAYLOAD_SIZE \
                           + LODGE_VERDICT_TICKET_SIZE + 108)

static size_t outcome_frame(lodge_exchange *x, int verdict, unsigned char *f)
{
    unsigned char *p = f + LODGE_FRAME_HEADER_SIZE;
    unsigned long pid = x->direct_pid;
    size_t n = LODGE_VERDICT_PAYLOAD_SIZE, path;

    p[0] = (unsigned char)verdict;
    lodge_put_u16(p + 1, (unsigned)x->answered);
    if (x->conn != NULL) {
        lodge_frame_put_header(f, LODGE_FRAME_RELEASE, LODGE_RELEASE_PAYLOAD_SIZE);
        return LODGE_FRAME_HEADER_SIZE + LODGE_RELEASE_PAYLOAD_SIZE;
    }
    path = pid == 0 && x->ticket != 0 ? strlen(x->route) : 0;
    if ((pid == 0 && path == 0) || path >= 108 || verdict == LODGE_RELEASE_DONE
        || lodge_conn_take(x->socket, &x->conn) != 0) {
        return 0;
    }
    lodge_put_u16(p + 3, (unsigned)(pid >> 16));
    lodge_put_u16(p + 5, (unsigned)(pid & 0xffff));
    if (pid == 0) {
        lodge_put_u16(p + n, (unsigned)(x->ticket >> 16));
        lodge_put_u16(p + n + 2, (unsigned)(x->ticket & 0xffff));
        n += LODGE_VERDICT_TICKET_SIZE;
        memcpy(p + n, x->route, path);
        n += path;
    }
    lodge_frame_put_header(f, LODGE_FRAME_VERDICT, (unsigned long)n);
    return LODGE_FRAME_HEADER_SIZE + n;
}

/* lodged's connection, out of step: closed (lodged stops a worker it lent). */
static void close_lodged(lodge_exchange *x)
{
    lodge_conn_close(x->conn);
    x->conn = NULL;
}

int lodge_lease_end(lodge_exchange *x, int verdict)
{
    unsigned char f[LODGE_VERDICT_MAX];
    lodge_conn *c;
    size_t n;
    int status = 0;

    if (x->worker == NULL) {
        return 0;
    }
    /* A worker that answered in step, on a connection it keeps, takes the next one. */
    if (verdict == LODGE_RELEASE_DONE && x->worker_keep
        && x->worker->pos == x->worker->end) {
        lodge_conn_give_back(x->worker);
    }
    else {
        lodge_conn_close(x->worker);
    }
    x->worker = NULL;
    /* The answer's status rides along: lodged's counts by status class
     * see the requests whose response it never carried. */
    if ((n = outcome_frame(x, verdict, f)) == 0) {
        return 0;
    }
    c = x->conn;
    (void)lodge_conn_set_timeout(c, LODGE_VERDICT_WAIT);
    if (lodge_conn_send(c, f, n) != 0) {
        close_lodged(x);
        return 0;
    }
    if (verdict == LODGE_RELEASE_LOST) {
        status = read_verdict(x);
        if (status == 0) {
            close_lodged(x);
            return 0;
        }
    }
    if (c->pos != c->end) {
        close_lodged(x);
        return status;
    }
    x->conn = NULL;
    lodge_conn_give_back(c);
    return status;
}

/* How a read from the worker failed, as a verdict. */
static int verdict_of(long n)
{
    if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
        return LODGE_RELEASE_LOST;
    }
    return n == -ETIMEDOUT || n == LODGE_DRAIN_OVER ? LODGE_RELEASE_STUCK
                                                    : LODGE_RELEASE_BROKEN;
}

/* More of the worker's stream, within the drain's byte budget. */
static long drain_fill(lodge_conn *w, unsigned long *budget)
{
    long n;

    if (*budget == 0) {
        return LODGE_DRAIN_OVER;
    }
    n = lodge_conn_fill(w, 1);
    if (n > 0) {
        *budget = (unsigned long)n >= *budget ? 0 : *budget - (unsigned long)n;
    }
    return n;
}

/*
 * Reads and drops the worker's output up to its END or ERROR, within the
 * connection's deadline and LODGE_DRAIN_MAX bytes. The verdict; *why gets
 * how it failed (0, -ETIMEDOUT, LODGE_DRAIN_OVER, -errno).
 */
static int drain(lodge_exchange *x, long *why)
{
    lodge_conn *w = x->worker;
    unsigned long skip = x->frame_left;
    unsigned long budget = LODGE_DRAIN_MAX;
    int last = 0;

    for (;;) {
        lodge_frame_head f;
        long n;

        while (skip > 0) {
            size_t have = w->end - w->pos;

            if (have == 0) {
                w->pos = w->end = 0;
                if ((n = drain_fill(w, &budget)) <= 0) {
                    *why = n;
                    return verdict_of(n);
                }
                continue;
            }
            if (have > skip) {
                have = skip;
            }
            w->pos += have;
            skip -= (unsigned long)have;
        }
        if (last) {
            return w->pos == w->end ? LODGE_RELEASE_DONE
                                    : LODGE_RELEASE_BROKEN;
        }
        while (w->end - w->pos < LODGE_FRAME_HEADER_SIZE) {
            if ((n = drain_fill(w, &budget)) <= 0) {
                *why = n;
                return verdict_of(n);
            }
        }
        if (lodge_frame_get_header(w->buf + w->pos, &f) != 0) {
            return LODGE_RELEASE_BROKEN;
        }
        w->pos += LODGE_FRAME_HEADER_SIZE;
        switch (f.type) {
        case LODGE_FRAME_END:
        case LODGE_FRAME_ERROR:
            last = 1;
            break;
        case LODGE_FRAME_HEAD:
        case LODGE_FRAME_DATA:
            break;
        default:
            return LODGE_RELEASE_BROKEN;
        }
        skip = f.length;
    }
}

void lodge_lease_finish(lodge_exchange *x)
{
    static const unsigned char abort_frame[LODGE_FRAME_HEADER_SIZE] = {
        LODGE_FRAME_ABORT, 0, 0, 0, 0, 0, 0, 0
    };
    long why = 0;
    int verdict, rv = 0;

    if (x->worker == NULL) {
        return;
    }
    (void)lodge_conn_set_timeout(x->worker, LODGE_ABORT_GRACE);
    lodge_conn_set_deadline(x->worker, LODGE_ABORT_GRACE);
    /* A piece of body half sent is finished first: what follows starts a frame. */
    if (x->out_off != x->out_len && !x->worker_broken) {
        if ((rv = lodge_conn_send(x->worker, x->chunk + x->out_off,
                                  x->out_len - x->out_off)) != 0) {
            x->worker_broken = 1;
        }
        x->out_off = x->out_len;
    }
    if (!x->worker_done && !x->worker_broken) {
        rv = lodge_conn_send(x->worker, abort_frame, sizeof(abort_frame));
        /*
         * Straight to the app, a worker closes the connection once its
         * response is out: the ABORT finds no reader, yet that response may
         * be whole in the socket, END included. Read it to tell which.
         */
        if (rv == -EPIPE || rv == -ECONNRESET) {
            rv = 0;
        }
    }
    if (x->worker_done) {
        verdict = x->worker->pos == x->worker->end && !x->worker_broken
                  ? LODGE_RELEASE_DONE : LODGE_RELEASE_BROKEN;
    }
    else if (rv == -ETIMEDOUT) {
        /* It takes no input in time: as stuck as one that will not stop. */
        verdict = LODGE_RELEASE_STUCK;
    }
    else if (rv != 0 || x->worker_broken) {
        verdict = LODGE_RELEASE_LOST;
    }
    else {
        verdict = drain(x, &why);
    }
    if (why == LODGE_DRAIN_OVER) {
        lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00056)
                   "the app's worker sent more than %lu bytes after being "
                   "told to stop; lodged stops it (pid %s, app %s)",
                   LODGE_DRAIN_MAX, x->worker_pid, x->dir->root);
    }
    else if (verdict == LODGE_RELEASE_STUCK) {
        lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00052)
                   "the app's worker did not end its response within %d s "
                   "of being told to stop; lodged stops it (app %s)",
                   LODGE_ABORT_GRACE, x->dir->root);
    }
    (void)lodge_lease_end(x, verdict);
}

/*
 * Waits for the lent worker's response while feeding it the body, as the
 * worker is ready for either: one that answers before it has read the body,
 * or streams while it reads, never waits on mod_lodge while mod_lodge waits
 * on it. No progress either way for the GRANT's timeout is -ETIMEDOUT.
 */
long lodge_lease_fill(lodge_exchange *x, int *result)
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
 * why: a crash, a watchdog; the line below is logged only if it does not),
 * or it made no progress within its timeout.
 */
int lodge_lease_failed(lodge_exchange *x, long n)
{
    if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
        return lodge_record(x, HTTP_BAD_GATEWAY, APLOG_ERR, LODGE_RELEASE_LOST,
                            apr_psprintf(x->r->pool, LODGE_LOGNO(00053)
                                         "the app's worker (pid %s) went "
                                         "away during the request",
                                         x->worker_pid));
    }
    if (n == -ETIMEDOUT) {
        return lodge_record(x, HTTP_GATEWAY_TIME_OUT, APLOG_ERR,
                            LODGE_RELEASE_TIMEOUT,
                            apr_psprintf(x->r->pool, LODGE_LOGNO(00054)
                                         "the app made no progress for "
                                         "LodgeTimeout %d s; its worker is "
                                         "stopped", x->worker_timeout));
    }
    return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00055)
                        "reading from the app's worker failed: %s",
                        lodge_errstr(x->r->pool, (int)-n));
}
