/*
 * lodge_exchange.h: one request's exchange with lodged or the app, as the
 * files that carry it share it (internal to mod_lodge). From the top down,
 * each calling only files below it:
 *
 *   lodge_request.c   the handler: which requests are an app's
 *   lodge_run.c       the exchange's steps in order, and the one place where
 *                     it ends: the outcome they recorded becomes the answer,
 *                     and what the request held is let go
 *   lodge_response.c  HEAD DATA... END (or ERROR, GRANT, ROUTE), onto Apache
 *   lodge_head.c      the HEAD frame's status and headers, checked
 *   lodge_tunnel.c    after a 101: bytes both ways (BODY out, DATA in)
 *   lodge_route.c     the apps' own sockets: a request straight to its app
 *   lodge_lease.c     the worker lodged lends (GRANT): waiting on it while
 *                     feeding it the body, and handing it back (RELEASE)
 *   lodge_send.c      the first write, and the rest of the body after it
 *   lodge_environ.c   the APP and REQ frames, built from the request
 *   lodge_exchange.c  what they share: the outcome, and log text
 *
 * A step that ends the exchange records how (x->outcome, below) and returns
 * the handler's value; none answers, closes or hands back what the exchange
 * holds. The status location (lodge_status.c) and a dashboard
 * (lodge_dashboard.c) start an exchange of their own (lodge_run).
 */
#ifndef LODGE_EXCHANGE_H
#define LODGE_EXCHANGE_H

#include "lodge_compat.h"
#include "lodge_config.h"
#include "lodge_conn.h"
#include "lodge_frame.h"

/*
 * Not an HTTP status, and far from Apache's own negative codes: the
 * connection died before any response byte, so the request may go again
 * on a fresh connection.
 */
#define LODGE_AGAIN (-1000)

/* lodged answered ROUTE: the request goes to the app's own socket (lodge_route.c). */
#define LODGE_ROUTED (-1001)

/* The longest message from lodged or an app copied into one log line. */
#define LODGE_LOG_MESSAGE_MAX 2048

/*
 * What becomes of the worker held when the exchange ends
 * (lodge_outcome.worker): a verdict (LODGE_RELEASE_*, lodge_protocol.h) it
 * is handed back with, or LODGE_FINISH: still in step, it is told to stop
 * and drained first (lodge_lease_finish).
 */
#define LODGE_FINISH (-1)

/* What becomes of lodged's connection (lodge_outcome.lodged). */
#define LODGE_CLOSE 0           /* its state unknown: closed */
#define LODGE_KEEP 1            /* in step: the exchange ended cleanly */

/*
 * How the exchange ended, as the step that ended it recorded it, beside the
 * handler's value it returned (OK or a status). lodge_run.c acts on it once.
 * With lodged LODGE_KEEP the exchange is in step (END, ERROR, ROUTE, a
 * tunnel ended): lodged's connection goes back to the free list and a worker
 * back as DONE, unless what is left over says otherwise; else the worker
 * goes as worker says and lodged's connection is closed (lodged stops a lent
 * worker whose connection closes).
 */
typedef struct {
    int lodged;                 /* LODGE_KEEP or LODGE_CLOSE */
    int worker;                 /* a verdict, or LODGE_FINISH; unused when kept */
    int level;                  /* of reason */
    const char *reason;         /* the log line, or NULL (none, or logged) */
    int cut;                    /* the client may have seen the start: cut it off */
    const char *retry_after;    /* for a status answered, or NULL */
} lodge_outcome;

typedef struct {
    request_rec *r;
    const lodge_dir_conf *dir;
    const char *socket;
    int timeout;                /* seconds per read from lodged */
    int lodged_wait;            /* seconds to wait for a lodged being restarted */
    int status;                 /* the status location, not an app */
    int dashboard;              /* the app's dashboard (LodgeDashboard) */

    int tunnel;                 /* APP said TUNNEL: a 101 opens the tunnel */
    int input_open;             /* TUNNEL: BODY_END not sent yet */
    int tunnel_idle;            /* seconds the tunnel may carry no byte */

    lodge_conn *conn;           /* held by this request; NULL when not */
    int conn_broken;            /* a send failed: never give it back */

    lodge_conn *worker;         /* the lent worker's socket, after GRANT */
    int worker_timeout;         /* seconds without progress (GRANT) */
    const char *worker_pid;     /* for the log */
    unsigned long direct_pid;   /* the worker that took it on the app's socket, or 0 */
    unsigned long ticket;       /* its REQ's ticket (ACCEPTED with the answer), or 0 */
    const char *route;          /* the app's socket, while ticket is set */
    int worker_keep;            /* its connection may carry the next request (ROUTE keep) */
    int worker_done;            /* its END or ERROR has been read */
    int worker_broken;          /* a send to it failed */
    unsigned long frame_left;   /* unread payload of the frame being read */

    lodge_buf first;            /* APP REQ [BODY] [BODY_END], as first sent */
    long long body_read;
    int body_done;              /* BODY_END is in first, or was sent */
    int body_streamed;          /* BODY went out after first: no resend */
    unsigned char *chunk;       /* the piece of body being sent, framed */
    size_t out_len;             /* its length */
    size_t out_off;             /* how much of it has been sent */

    int responded;              /* lodged sent at least one byte */
    int committed;              /* the client may have seen the status */
    int answered;               /* the status of HEAD or ERROR read; 0 before */
    int unflushed;              /* the client has not seen all given it */
    long long declared;         /* the app's Content-Length, or -1 */
    long long sent;             /* body bytes given to Apache */
    int bodyless;               /* 204, 304 or HEAD: a body is dropped */
    int overran;                /* a body came that the framing has no room for */

    lodge_outcome outcome;      /* how it ended, for lodge_run.c */
} lodge_exchange;

/* lodge_exchange.c: log text. */

/* Control characters replaced, at most LODGE_LOG_MESSAGE_MAX bytes. */
const char *lodge_loggable(apr_pool_t *p, const unsigned char *s, size_t n);

/* Who the response comes from, for the log. */
const char *lodge_source(const lodge_exchange *x);

/* The stream the response comes on: the worker's, else lodged's. */
#define LODGE_IN(x) ((x)->worker != NULL ? (x)->worker : (x)->conn)

/* Decimal text of a 64-bit count, in p. */
const char *lodge_count_text(apr_pool_t *p, long long v);

/* The length of an app root to compare paths with; 0 for "/". */
size_t lodge_root_len(const char *root);

/* Logs one error line and returns status, for a return in one line. */
int lodge_fail(request_rec *r, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/* lodge_exchange.c: recording the outcome (each returns the value given). */

/*
 * The exchange stops here: reason, the log line at level (the app's root
 * appended; NULL: none, or logged already); what becomes of a worker held (a verdict, or LODGE_FINISH);
 * lodged's connection closed; the client cut off if it may have seen the
 * start.
 */
int lodge_record(lodge_exchange *x, int status, int level, int worker,
                 const char *reason);

/* lodged or the worker (or the stream from it) went wrong: as BROKEN. */
int lodge_broken(lodge_exchange *x, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/*
 * The app's response cannot be passed on, though its stream is in step
 * (a bad header, a wrong length): the worker is told to stop and handed
 * back (LODGE_FINISH), not stopped.
 */
int lodge_refused(lodge_exchange *x, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/* The client went away: the app is told (ABORT), the response cut off; OK. */
int lodge_client_gone(lodge_exchange *x, const char *when);

/* The exchange ended in step (END, ERROR, ROUTE): all is handed back. */
void lodge_in_step(lodge_exchange *x);

/* lodge_run.c */

/* A new exchange for r, to lodged at the server's LodgeSocket. */
lodge_exchange *lodge_exchange_new(request_rec *r, const lodge_dir_conf *dir);

/* Builds the request, carries it and the response, answers how it ended. */
int lodge_run(lodge_exchange *x);

#endif /* LODGE_EXCHANGE_H */
