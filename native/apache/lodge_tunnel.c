/*
 * lodge_tunnel.c: after a 101 to a TUNNEL request, raw bytes both ways
 * between the client's connection and the backend's stream (PROTOCOL.md,
 * "The tunnel"):
 *
 *   client -> backend   a BODY frame of what the client sent, as it comes
 *                       (at most 64 KiB each)
 *   backend -> client   DATA payloads, written and flushed as they come
 *   client's end        BODY_END; the backend's END awaited 5 s (DATA dropped)
 *   backend's END/ERROR BODY_END; the client's connection closed
 *   no byte either way  for x->tunnel_idle seconds: both closed, logged
 *
 * The backend is LODGE_IN(x): lodged's connection, or the socket of a
 * worker lodged lent (GRANT), so the same loop serves both. Both sides are
 * waited on with one poll(); a BODY frame the backend cannot take yet stops
 * reading the client (back-pressure), and a client slow to take DATA stops
 * reading the backend, since writes to the client complete before the next
 * read (bounded by Apache's Timeout).
 */
#include "lodge_tunnel.h"

#include <poll.h>
#include <sys/socket.h>

/* LODGE_TUNNEL_CHUNK, LODGE_TUNNEL_GRACE: lodge_protocol.h. */

typedef struct {
    lodge_exchange *x;
    lodge_conn *b;              /* the backend's stream */
    lodge_client_io io;
    int client_fd;
    int client_done;            /* the client's end, or a failure on its side */
    int ended;                  /* the backend's END or ERROR was read */
    int broken;                 /* the backend's stream failed (logged) */
    int stuck;                  /* no END within the grace after the client's end */
} lodge_tunnel;

/* Whether the comma-separated list holds token, in any case. */
static int has_token(const char *list, const char *token)
{
    size_t n = strlen(token);

    while (list != NULL && *list != '\0') {
        const char *end;

        while (*list == ' ' || *list == '\t' || *list == ',') {
            list++;
        }
        end = list;
        while (*end != '\0' && *end != ',') {
            end++;
        }
        while (end > list && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        if ((size_t)(end - list) == n && strncasecmp(list, token, n) == 0) {
            return 1;
        }
        list = end;
        while (*list != '\0' && *list != ',') {
            list++;
        }
    }
    return 0;
}

int lodge_wants_tunnel(request_rec *r)
{
    return r->method_number == M_GET
        && r->proto_num == HTTP_VERSION(1, 1)
        && has_token(apr_table_get(r->headers_in, "Upgrade"), "websocket")
        && has_token(apr_table_get(r->headers_in, "Connection"), "upgrade");
}

int lodge_end_input(lodge_exchange *x, lodge_conn *c)
{
    static const unsigned char body_end[LODGE_FRAME_HEADER_SIZE] = {
        LODGE_FRAME_BODY_END, 0, 0, 0, 0, 0, 0, 0
    };

    if (!x->input_open) {
        return 0;
    }
    x->input_open = 0;
    return lodge_conn_send(c, body_end, sizeof(body_end)) == 0 ? 0 : -1;
}

/* fmt takes who the backend is, detail, and the app. */
static void broken(lodge_tunnel *t, const char *fmt, const char *detail)
{
    lodge_rlog(APLOG_ERR, t->x->r, fmt, lodge_source(t->x), detail,
               t->x->dir->root);
    t->broken = 1;
}

/* To the client, flushed; a failure ends the client's side. */
static void to_client(lodge_tunnel *t, const unsigned char *p, size_t n)
{
    request_rec *r = t->x->r;

    lodge_client_timeout(r, "lodge: sending into the tunnel");
    if (lodge_tunnel_write(r, &t->io, p, n) != 0) {
        t->client_done = 1;
    }
    lodge_client_timeout_end(r);
}

/*
 * The frames buffered from the backend: DATA passed on (dropped once the
 * client is done), END or ERROR noted. Returns whether anything was used.
 */
static int from_backend(lodge_tunnel *t)
{
    lodge_exchange *x = t->x;
    lodge_conn *b = t->b;
    int used = 0;

    while (!t->ended && !t->broken) {
        size_t have = b->end - b->pos;
        lodge_frame_head f;

        if (x->frame_left > 0) {
            size_t n = have < x->frame_left ? have : x->frame_left;

            if (n == 0) {
                break;
            }
            if (!t->client_done) {
                to_client(t, b->buf + b->pos, n);
            }
            b->pos += n;
            x->frame_left -= n;
            used = 1;
            continue;
        }
        if (have < LODGE_FRAME_HEADER_SIZE) {
            break;
        }
        (void)lodge_frame_get_header(b->buf + b->pos, &f);
        if (f.type == LODGE_FRAME_DATA && f.length <= LODGE_FRAME_MAX) {
            b->pos += LODGE_FRAME_HEADER_SIZE;
            x->frame_left = f.length;
        }
        else if (f.type == LODGE_FRAME_END && f.length == 0) {
            b->pos += LODGE_FRAME_HEADER_SIZE;
            t->ended = 1;
        }
        else if (f.type == LODGE_FRAME_ERROR && f.length >= 4
                 && f.length <= LODGE_CONN_BUFSIZE - LODGE_FRAME_HEADER_SIZE) {
            if (have < LODGE_FRAME_HEADER_SIZE + f.length) {
                break;
            }
            lodge_rlog(APLOG_ERR, x->r, LODGE_LOGNO(00020) "%s",
                       lodge_loggable(x->r->pool,
                                      b->buf + b->pos + LODGE_FRAME_HEADER_SIZE + 4,
                                      f.length - 4));
            b->pos += LODGE_FRAME_HEADER_SIZE + f.length;
            t->ended = 1;
        }
        else {
            broken(t, LODGE_LOGNO(00066) "%s sent a %s frame in a tunnel, "
                   "where only DATA, END and ERROR belong (app %s)",
                   lodge_frame_name(f.type));
            break;
        }
        used = 1;
    }
    return used;
}

/* More of the backend's stream, if some is there. Whether some came. */
static int fill_backend(lodge_tunnel *t)
{
    long n = lodge_conn_fill(t->b, 0);

    if (n > 0) {
        return 1;
    }
    if (n == 0) {
        broken(t, LODGE_LOGNO(00067) "%s closed the tunnel without END "
               "(%s; app %s)", "its connection closed");
    }
    else if (n != -EAGAIN) {
        broken(t, LODGE_LOGNO(00068) "reading from %s in a tunnel failed: "
               "%s (app %s)", lodge_errstr(t->x->r->pool, (int)-n));
    }
    return 0;
}

/*
 * The client's bytes, as a BODY frame, out without waiting: the next piece
 * is read only once the last has gone. Whether anything moved.
 */
static int to_backend(lodge_tunnel *t)
{
    lodge_exchange *x = t->x;
    const size_t h = LODGE_FRAME_HEADER_SIZE;
    int moved = 0;

    if (x->out_off == x->out_len && !t->client_done) {
        long n = lodge_tunnel_read(x->r, &t->io, (char *)x->chunk + h,
                                   LODGE_TUNNEL_CHUNK);

        if (n > 0) {
            lodge_frame_put_header(x->chunk, LODGE_FRAME_BODY, (size_t)n);
            x->out_len = h + (size_t)n;
            x->out_off = 0;
            moved = 1;
        }
        else if (n != -EAGAIN) {
            t->client_done = 1;
            return 1;
        }
    }
    if (x->out_off < x->out_len) {
        ssize_t w = send(t->b->fd, x->chunk + x->out_off,
                         x->out_len - x->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (w > 0) {
            x->out_off += (size_t)w;
            moved = 1;
        }
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK
                 && errno != EINTR) {
            broken(t, LODGE_LOGNO(00069) "sending to %s in a tunnel failed: "
                   "%s (app %s)", lodge_errstr(x->r->pool, errno));
        }
    }
    return moved;
}

/*
 * Until either side ends, or nothing moves for the idle time. Returns 0,
 * or -1 when idle.
 */
static int relay(lodge_tunnel *t)
{
    lodge_exchange *x = t->x;
    long long last = lodge_now_ms();

    while (!t->client_done && !t->ended && !t->broken) {
        struct pollfd p[2];
        long long left;
        int moved, n;

        moved = from_backend(t);
        if (t->client_done || t->ended || t->broken) {
            break;
        }
        moved |= to_backend(t);
        if (moved) {
            last = lodge_now_ms();
            continue;
        }
        left = last + x->tunnel_idle * 1000LL - lodge_now_ms();
        if (left <= 0) {
            return -1;
        }
        /* A client not read (a BODY frame still going) is not polled at all. */
        p[0].fd = x->out_off == x->out_len ? t->client_fd : -1;
        p[0].events = POLLIN;
        p[0].revents = 0;
        p[1].fd = t->b->fd;
        p[1].events = POLLIN | (x->out_off < x->out_len ? POLLOUT : 0);
        p[1].revents = 0;
        n = poll(p, 2, left > 0x7fffffff ? 0x7fffffff : (int)left);
        if (n < 0 && errno != EINTR) {
            broken(t, LODGE_LOGNO(00072) "waiting on %s and the client in a "
                   "tunnel failed: %s (app %s)",
                   lodge_errstr(x->r->pool, errno));
        }
        if (n > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))
            && fill_backend(t)) {
            last = lodge_now_ms();
        }
    }
    return 0;
}

/*
 * The client's side is done: the rest of a BODY frame begun and BODY_END
 * go out, then what the backend still sends is dropped up to its END,
 * within LODGE_TUNNEL_GRACE seconds in all.
 */
static void await_end(lodge_tunnel *t)
{
    lodge_exchange *x = t->x;
    long long deadline = lodge_now_ms() + LODGE_TUNNEL_GRACE * 1000LL;

    if (x->out_off < x->out_len
        && lodge_conn_send(t->b, x->chunk + x->out_off,
                           x->out_len - x->out_off) != 0) {
        t->broken = 1;
        return;
    }
    x->out_off = x->out_len;
    if (lodge_end_input(x, t->b) != 0) {
        t->broken = 1;
        return;
    }
    while (!t->ended && !t->broken && !t->stuck) {
        struct pollfd p;
        long long left = deadline - lodge_now_ms();

        (void)from_backend(t);
        if (t->ended || t->broken) {
            break;
        }
        if (left <= 0) {
            lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00070)
                       "%s sent no END within %d s of the client's end of "
                       "the tunnel; its connection is closed (app %s)",
                       lodge_source(x), LODGE_TUNNEL_GRACE, x->dir->root);
            t->stuck = 1;
            break;
        }
        p.fd = t->b->fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, (int)left) > 0) {
            (void)fill_backend(t);
        }
    }
}

/*
 * The backend ended: the rest of a BODY frame begun goes out (lodged drops
 * it, and what follows, up to BODY_END), and the exchange is in step.
 */
static void finish_after_end(lodge_tunnel *t)
{
    lodge_exchange *x = t->x;

    if (x->out_off < x->out_len
        && lodge_conn_send(t->b, x->chunk + x->out_off,
                           x->out_len - x->out_off) != 0) {
        x->conn_broken = 1;
        x->worker_broken = 1;
    }
    x->out_off = x->out_len;
    lodge_in_step(x);
}

int lodge_tunnel_relay(lodge_exchange *x)
{
    request_rec *r = x->r;
    lodge_tunnel t;

    memset(&t, 0, sizeof(t));
    t.x = x;
    t.b = LODGE_IN(x);
    t.client_fd = lodge_client_fd(r);
    x->committed = 1;
    x->chunk = apr_palloc(r->pool, LODGE_FRAME_HEADER_SIZE + LODGE_TUNNEL_CHUNK);
    x->out_len = x->out_off = 0;
    /* Every later step has its own bound; the backend may be quiet for long. */
    (void)lodge_conn_set_timeout(t.b, LODGE_TUNNEL_GRACE);

    lodge_client_timeout(r, "lodge: opening the tunnel");
    t.client_done = lodge_tunnel_open(r, &t.io) != 0 || t.client_fd < 0;
    lodge_client_timeout_end(r);
    if (relay(&t) != 0) {
        return lodge_record(x, OK, APLOG_WARNING, LODGE_RELEASE_TIMEOUT,
                            apr_psprintf(r->pool, LODGE_LOGNO(00071)
                                         "the tunnel carried nothing either "
                                         "way for %d s; both sides are "
                                         "closed", x->tunnel_idle));
    }
    if (t.client_done && !t.ended && !t.broken) {
        await_end(&t);
    }
    if (t.ended && !t.broken) {
        finish_after_end(&t);
    }
    else {
        /* Cut off (committed), the reason logged where it was seen. */
        (void)lodge_record(x, OK, APLOG_ERR, t.stuck ? LODGE_RELEASE_STUCK
                                                     : LODGE_RELEASE_BROKEN,
                           NULL);
    }
    lodge_close_after(r, 1);
    return OK;
}
