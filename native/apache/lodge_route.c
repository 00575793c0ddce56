/*
 * lodge_route.c: the apps' own sockets, as lodged told of them. See
 * lodge_route.h and PROTOCOL.md ("Straight to the app").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* struct ucred (SO_PEERCRED) */
#endif
#include "lodge_route.h"
#include "lodge_lease.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * SIOCOUTQ tells a request a worker read from one still queued, which a
 * REQ with a ticket needs (it gets no ACCEPTED until the answer).
 */
#ifdef __linux__
#include <sys/ioctl.h>
#include <linux/sockios.h>
#ifdef SIOCOUTQ
#define LODGE_LATE_ACCEPT 1
#endif
#endif

/*
 * A connection to an app's socket that no worker took within this many
 * seconds is looked at: is the lodged that made the socket still there?
 */
#define LODGE_ACCEPT_CHECK 1

/*
 * Routes one Apache process remembers; past it the least recently used
 * goes (and is asked for again when needed). An APP payload is a few
 * hundred bytes, so this stays well under a megabyte a process.
 */
#define LODGE_ROUTES 512

/* sizeof(sockaddr_un.sun_path) */
#define LODGE_ROUTE_PATH 108

typedef struct {
    unsigned char *key;         /* the APP payload, malloc'd */
    size_t key_len;
    char path[LODGE_ROUTE_PATH];
    int timeout;                /* seconds without progress (the app's LodgeTimeout) */
    int queue;                  /* seconds a request may wait for a worker to take it */
    int keep;                   /* its workers take request after request on a connection */
    unsigned long used;
} lodge_route;

static lodge_route routes[LODGE_ROUTES];
static int route_count;
static unsigned long route_clock;
static lodge_mutex_t *route_lock;
static int routing;             /* 0 until child_init has a lock: lodged serves all */
/* This child's part of the ticket space, set once: getpid() per request is a system call. */
static unsigned long ticket_seed;

int lodge_route_child_init(apr_pool_t *pchild)
{
    int rv = lodge_mutex_create(&route_lock, pchild);

    ticket_seed = (unsigned long)getpid() * 2654435761UL;
    routing = rv == 0;
    return rv;
}

/* Called with the lock held. */
static lodge_route *find(const unsigned char *key, size_t len)
{
    int i;

    for (i = 0; i < route_count; i++) {
        if (routes[i].key_len == len && memcmp(routes[i].key, key, len) == 0) {
            return &routes[i];
        }
    }
    return NULL;
}

static int lookup(const unsigned char *key, size_t len, char *path, int *timeout,
                  int *queue, int *keep)
{
    lodge_route *e;

    lodge_mutex_lock(route_lock);
    e = find(key, len);
    if (e != NULL) {
        e->used = ++route_clock;
        memcpy(path, e->path, LODGE_ROUTE_PATH);
        *timeout = e->timeout;
        *queue = e->queue;
        *keep = e->keep;
    }
    lodge_mutex_unlock(route_lock);
    return e != NULL;
}

static void learn(const unsigned char *key, size_t len, const char *path,
                  int timeout, int queue, int keep)
{
    lodge_route *e;
    unsigned char *copy;

    lodge_mutex_lock(route_lock);
    e = find(key, len);
    if (e == NULL) {
        if ((copy = malloc(len)) == NULL) {
            lodge_mutex_unlock(route_lock);
            return;  /* not remembered: lodged is asked again next time */
        }
        memcpy(copy, key, len);
        if (route_count < LODGE_ROUTES) {
            e = &routes[route_count++];
        }
        else {
            int i;

            e = &routes[0];
            for (i = 1; i < route_count; i++) {
                if (routes[i].used < e->used) {
                    e = &routes[i];
                }
            }
            free(e->key);
        }
        e->key = copy;
        e->key_len = len;
    }
    memcpy(e->path, path, strlen(path) + 1);  /* shorter than the field: checked */
    e->timeout = timeout;
    e->queue = queue;
    e->keep = keep;
    e->used = ++route_clock;
    lodge_mutex_unlock(route_lock);
}

static void forget(const unsigned char *key, size_t len)
{
    lodge_route *e;

    lodge_mutex_lock(route_lock);
    e = find(key, len);
    if (e != NULL) {
        free(e->key);
        *e = routes[--route_count];
    }
    lodge_mutex_unlock(route_lock);
}

/* The APP payload at the start of x->first, and what follows it. */
static size_t app_frame(const lodge_exchange *x, const unsigned char **key,
                        size_t *key_len)
{
    lodge_frame_head f;

    lodge_frame_get_header(x->first.data, &f);
    *key = x->first.data + LODGE_FRAME_HEADER_SIZE;
    *key_len = f.length;
    return LODGE_FRAME_HEADER_SIZE + f.length;
}

/*
 * Whether the process that made the socket w is connected to (listen(): the
 * lodged of its app, SO_PEERCRED) is gone. Its workers then finish the
 * request each holds and leave, accepting nothing more, and a busy one keeps
 * the socket open until then: a connection queued there would wait for it.
 * The socket file may still lead there too, until the next lodged makes the
 * app's socket anew. 0 when it cannot tell.
 */
static int maker_gone(const lodge_conn *w)
{
#ifdef SO_PEERCRED
    struct ucred cred;
    socklen_t n = sizeof(cred);

    if (getsockopt(w->fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0
        || cred.pid <= 0) {
        return 0;
    }
    return kill(cred.pid, 0) != 0 && errno == ESRCH;
#else
    (void)w;
    return 0;
#endif
}

/*
 * A REQ ticket, 1 to 0xFFFFFF: this process's pid spread over the range
 * and a count, so two Apache processes' tickets seldom meet. lodged looks a
 * ticket up among one app's workers only, those holding a request.
 */
static unsigned long next_ticket(void)
{
    static unsigned long count;
    unsigned long t = (__sync_add_and_fetch(&count, 1) + ticket_seed) & 0xffffffUL;

    return t != 0 ? t : 1;
}

/*
 * Whether a worker has read all of the request sent on w: SIOCOUTQ counts
 * the bytes sent that the other end has not read, and a connection still
 * in the listen queue has read none. 0 when it cannot tell.
 */
static int request_read(const lodge_conn *w)
{
#ifdef LODGE_LATE_ACCEPT
    int unread = 0;

    return ioctl(w->fd, SIOCOUTQ, &unread) == 0 && unread == 0;
#else
    (void)w;
    return 0;
#endif
}

/* The worker took the request: the exchange holds it as a lent one's. */
static void hold(lodge_exchange *x, lodge_conn *w, int timeout, int keep)
{
    x->worker = w;
    x->worker_timeout = timeout;
    x->worker_keep = keep;
    (void)lodge_conn_set_timeout(w, timeout);
}

/*
 * The worker that accepts the connection says so (ACCEPTED, its pid):
 * first, or, for a REQ with a ticket, in front of its answer. Until a worker
 * has read the request nobody has seen it, so a connection closed before
 * then (the app's last worker left with it still queued: ECONNRESET) may go
 * to lodged instead, and a request body is held back until ACCEPTED.
 * With a ticket, end of file means a worker read the request and went
 * without answering, and a request read (request_read) at the accept check
 * is held: it failed, or is late, as a lent worker's. OK, or LODGE_AGAIN,
 * or the status to answer; the exchange holds w once a worker took it.
 */
static int await_accept(lodge_exchange *x, lodge_conn *w, int timeout, int keep)
{
    const size_t need = LODGE_FRAME_HEADER_SIZE + 4;
    long long queue_end = lodge_now_ms() + w->timeout * 1000LL;
    lodge_frame_head f;
    unsigned long pid;

    lodge_conn_set_deadline(w, LODGE_ACCEPT_CHECK);
    while (w->end - w->pos < need) {
        long n = lodge_conn_fill(w, 1);

        if (x->worker == NULL && x->ticket != 0 && n == 0) {
            hold(x, w, timeout, keep);
        }
        if (x->worker != NULL && n <= 0) {
            return lodge_lease_failed(x, n);
        }
        if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
            return LODGE_AGAIN;
        }
        if (n == -ETIMEDOUT && w->deadline != 0) {
            /*
             * Nobody took it yet: every worker busy, or a socket left behind.
             * On a kept connection it is a worker whose loop is stuck (one
             * with a lane free answers at once, one with none closes): the
             * request goes on a new connection, to another worker. If this
             * one comes back, it finds the connection closed before it takes
             * the request, and drops it (lane.ts).
             */
            long long left;

            w->deadline = 0;
            if (x->ticket != 0 && request_read(w)) {
                hold(x, w, timeout, keep);
                continue;
            }
            if (w->reused || maker_gone(w)) {
                return LODGE_AGAIN;
            }
            if (x->ticket == 0) {
                continue;   /* ACCEPTED tells when it is taken: wait the rest of `queue` */
            }
            /* A ticket's request is looked at each second until taken. */
            left = queue_end - lodge_now_ms();
            if (left > 0) {
                w->deadline = lodge_now_ms()
                              + (left < LODGE_ACCEPT_CHECK * 1000LL
                                 ? left : LODGE_ACCEPT_CHECK * 1000LL);
                continue;
            }
            n = -ETIMEDOUT;
        }
        if (n == -ETIMEDOUT) {
            /* Every worker busy for as long as a request may take: as a full queue. */
            lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00082)
                       "no worker of the app took the request within %d s "
                       "(app %s)", w->timeout, x->dir->root);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (n < 0) {
            return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00083)
                                "cannot read the app's socket: %s",
                                lodge_errstr(x->r->pool, (int)-n));
        }
    }
    if (x->worker == NULL) {
        hold(x, w, timeout, keep);
    }
    lodge_frame_get_header(w->buf + w->pos, &f);
    if (f.type != LODGE_FRAME_ACCEPTED || f.length != 4) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00084)
                            "the app's worker opened its answer with a %s "
                            "frame (type 0x%02x), not ACCEPTED",
                            lodge_frame_name(f.type), (unsigned)f.type);
    }
    pid = ((unsigned long)lodge_get_u16(w->buf + w->pos + 8) << 16)
          | lodge_get_u16(w->buf + w->pos + 10);
    w->deadline = 0;
    x->worker_pid = apr_psprintf(x->r->pool, "%lu", pid);
    x->direct_pid = pid;
    w->pos += need;
    /* The worker has only just begun: its answer is not there yet either. */
    w->awaiting = w->pos == w->end;
    return OK;
}

/*
 * Whether this request's REQ gets a ticket: it has no body (a body waits for
 * ACCEPTED), the connection is new (a kept one's worker may refuse a REQ it
 * read, by closing), and this machine can tell a request read from one
 * queued.
 */
static int wants_ticket(const lodge_exchange *x, const lodge_conn *w, int keep)
{
#ifdef LODGE_LATE_ACCEPT
    return !keep && !w->reused && (x->first.data[1] & LODGE_APP_MAY_BORROW) != 0;
#else
    (void)x;
    (void)w;
    (void)keep;
    return 0;
#endif
}

/* The ticket in a REQ's header bytes 1-3 (0: none). */
static void put_ticket(unsigned char *req, unsigned long ticket)
{
    req[1] = (unsigned char)(ticket >> 16);
    req[2] = (unsigned char)(ticket >> 8);
    req[3] = (unsigned char)ticket;
}

/*
 * REQ [BODY_END] to the app's socket; once a worker took it, the exchange
 * holds the worker as a lent one's, whatever came. Before that the
 * connection is this file's: closed on anything but OK. A kept connection
 * that fails before ACCEPTED (its worker left, or had no lane free and
 * refused it) forgets nothing: the caller tries a new one.
 */
static int send_to_app(lodge_exchange *x, lodge_conn *w, const char *path,
                       int timeout, int queue, int keep)
{
    const unsigned char *key;
    size_t key_len, skip = app_frame(x, &key, &key_len);
    unsigned char *req = x->first.data + skip;
    int rv, reused = w->reused;

    x->ticket = wants_ticket(x, w, keep) ? next_ticket() : 0;
    x->route = x->ticket != 0 ? apr_pstrdup(x->r->pool, path) : NULL;
    put_ticket(req, x->ticket);
    /* Until a worker takes it, the request waits as in lodged's queue. */
    (void)lodge_conn_set_timeout(w, queue);
    rv = lodge_conn_send(w, req, x->first.len - skip);
    /* lodged never sees a ticket: the request may go there yet. */
    put_ticket(req, 0);
    if (rv == 0) {
        rv = await_accept(x, w, timeout, keep);
    }
    else {
        rv = LODGE_AGAIN;  /* closed before it took anything: nobody saw it */
    }
    if (x->worker == w) {
        return rv;
    }
    x->ticket = 0;
    lodge_conn_close(w);
    if (rv == LODGE_AGAIN && !reused) {
        forget(key, key_len);
    }
    return rv;
}

/*
 * A connection this process kept to the app's socket, while the socket is
 * there: lodged moves it aside while the tenant holds its share (PROTOCOL.md),
 * and a kept connection must not get round that. NULL when there is none.
 */
static lodge_conn *kept(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        return NULL;
    }
    return lodge_conn_take_idle(path);
}

int lodge_route_try(lodge_exchange *x)
{
    const unsigned char *key;
    size_t key_len;
    char path[LODGE_ROUTE_PATH];
    int timeout, queue, keep = 0, rv;
    lodge_conn *w;

    if (!routing || x->status || x->dashboard || x->tunnel) {
        return LODGE_AGAIN;
    }
    (void)app_frame(x, &key, &key_len);
    if (!lookup(key, key_len, path, &timeout, &queue, &keep)) {
        return LODGE_AGAIN;
    }
    if (keep && (w = kept(path)) != NULL
        && (rv = send_to_app(x, w, path, timeout, queue, keep)) != LODGE_AGAIN) {
        return rv;
    }
    rv = lodge_conn_open_app(path, &w);
    if (rv == -EAGAIN) {
        /*
         * The app's listen queue is full: lodged serves this one itself, so
         * one place answers past the queue (503 with Retry-After, counted in
         * the status, the tenant's share applied) or queues it while a worker
         * can still start. Only the overload path pays lodged's round trip.
         */
        x->first.data[1] &= (unsigned char)~LODGE_APP_ROUTE;
        return LODGE_AGAIN;
    }
    if (rv != 0) {
        forget(key, key_len);
        return LODGE_AGAIN;
    }
    return send_to_app(x, w, path, timeout, queue, keep);
}

int lodge_route_take(lodge_exchange *x, const unsigned char *payload,
                     size_t len)
{
    lodge_conn *c = x->conn;
    const unsigned char *key;
    size_t key_len;
    lodge_pairs it;
    lodge_pair p;
    const char *path = NULL;
    long timeout = 0, queue = 0;
    int keep = 0, rv;

    lodge_pairs_init(&it, payload, len);
    while ((rv = lodge_pairs_next(&it, &p)) == 1) {
        if (p.name_len == 6 && memcmp(p.name, "socket", 6) == 0) {
            path = apr_pstrmemdup(x->r->pool, p.value, p.value_len);
        }
        else if (p.name_len == 7 && memcmp(p.name, "timeout", 7) == 0) {
            timeout = strtol(apr_pstrmemdup(x->r->pool, p.value, p.value_len),
                             NULL, 10);
        }
        else if (p.name_len == 5 && memcmp(p.name, "queue", 5) == 0) {
            queue = strtol(apr_pstrmemdup(x->r->pool, p.value, p.value_len),
                           NULL, 10);
        }
        else if (p.name_len == 4 && memcmp(p.name, "keep", 4) == 0) {
            keep = p.value_len == 1 && p.value[0] == '1';
        }
    }
    if (rv < 0 || path == NULL || path[0] != '/'
        || strlen(path) >= LODGE_ROUTE_PATH || timeout <= 0 || timeout > 86400 || queue <= 0 || queue > 86400) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00078)
                            "lodged sent an unreadable ROUTE");
    }
    /* lodged is done with this request: its connection goes back. */
    if (c->pos != c->end) {
        return lodge_broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00079)
                            "lodged sent more after a ROUTE");
    }
    lodge_in_step(x);
    if (routing) {
        (void)app_frame(x, &key, &key_len);
        learn(key, key_len, path, (int)timeout, (int)queue, keep);
    }
    return LODGE_ROUTED;
}
