/*
 * lodge_exchange.h: one request's exchange with lodged, as the files that
 * carry it share it (internal to mod_lodge):
 *
 *   lodge_request.c   the handler, and the exchange tying the rest together
 *   lodge_environ.c   the APP and REQ frames, built from the request
 *   lodge_send.c      the first write, and the rest of the body after it
 *   lodge_response.c  HEAD DATA... END (or ERROR) from lodged, onto Apache
 *   lodge_head.c      the HEAD frame's status and headers, checked
 *   lodge_lease.c     the worker lodged lends (GRANT): feeding it the body,
 *                     its failures, and handing it back
 *   lodge_tunnel.c    after a 101: bytes both ways (BODY out, DATA in)
 *   lodge_status.c    the status location: the host's SetHandler only
 *   lodge_dashboard.c a tenant's dashboard: LodgeDashboard, behind auth
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
} lodge_exchange;

/* Control characters replaced, at most LODGE_LOG_MESSAGE_MAX bytes. */
const char *lodge_loggable(apr_pool_t *p, const unsigned char *s, size_t n);

/* Who the response comes from, for the log. */
const char *lodge_source(const lodge_exchange *x);

/* The stream the response comes on: the lent worker's, else lodged's. */
#define LODGE_IN(x) ((x)->worker != NULL ? (x)->worker : (x)->conn)

/* Decimal text of a 64-bit count, in p. */
const char *lodge_count_text(apr_pool_t *p, long long v);

/* The length of an app root to compare paths with; 0 for "/". */
size_t lodge_root_len(const char *root);

/* Closes the connection held, if any: its state is unknown. */
void lodge_drop(lodge_exchange *x);

/* Logs one error line and returns status, for a return in one line. */
int lodge_fail(request_rec *r, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/*
 * lodged or the worker (or the stream from it) went wrong: logs, lets go
 * of both (lodged stops a lent worker), and returns status, or cuts the
 * client off if it may have seen the start.
 */
int lodge_broken(lodge_exchange *x, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/*
 * The app's response cannot be passed on, though its stream is in step
 * (a bad header, a wrong length): as lodge_broken, but the worker is told
 * to stop and handed back, not stopped.
 */
int lodge_refused(lodge_exchange *x, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

/* The client went away: the app is told (ABORT), the response cut off. */
int lodge_client_gone(lodge_exchange *x, const char *when);

/* A TUNNEL request's BODY_END on c, once: 0, or -1 when it could not be sent. */
int lodge_end_input(lodge_exchange *x, lodge_conn *c);

/*
 * After a clean END or ERROR: a TUNNEL request's input is ended (BODY_END),
 * the lent worker handed back, the connection put back on the free list if
 * nothing is left over (else closed).
 */
void lodge_give_back(lodge_exchange *x);

/* A new exchange for r, to lodged at the server's LodgeSocket. */
lodge_exchange *lodge_exchange_new(request_rec *r, const lodge_dir_conf *dir);

/* Builds the request, carries it and the response, answers failures. */
int lodge_run(lodge_exchange *x);

#endif /* LODGE_EXCHANGE_H */
