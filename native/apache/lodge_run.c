/*
 * lodge_run.c: one request's exchange, start to end.
 *
 *   the first frames built (lodge_send.c), then to the app's own socket when
 *   its route is known (lodge_route.c), else to lodged, once more on a fresh
 *   connection when a kept one was dead; the response onto Apache
 *   (lodge_response.c)
 *
 *   the end, here and only here: each step returns the handler's value and
 *   records how the exchange ended (x->outcome, lodge_exchange.h). That
 *   becomes the answer (the log line, Apache's error page, Retry-After, or a
 *   response cut off), and what the request held is let go: the worker handed
 *   back with its verdict (lodge_lease.c), lodged's connection back on the
 *   free list or closed.
 */
#include "lodge_exchange.h"
#include "lodge_lease.h"
#include "lodge_response.h"
#include "lodge_route.h"
#include "lodge_send.h"
#include "lodge_tunnel.h"

/*
 * A read from lodged may wait the tenant's LodgeTimeout (or this default)
 * plus a grace period: lodged enforces the timeout itself and answers 504,
 * so the grace only catches a lodged that stopped answering at all.
 */
#define LODGE_DEFAULT_TIMEOUT 30
#define LODGE_READ_GRACE 60

/*
 * The longest LodgeTimeout a read from lodged waits for when the host set
 * no LodgeLimit timeout. lodged clamps the tenant's value to its own
 * limits, which mod_lodge does not know; without a cap here a tenant's
 * `LodgeTimeout 999999` would let a lodged that stopped answering hold an
 * Apache child for days. A host that allows longer says LodgeLimit timeout.
 */
#define LODGE_TIMEOUT_HOST_MAX 3600

/*
 * With LodgeDaemon on, a lodged that refuses connections has died, and
 * Apache's parent starts the next at once (lodge_daemon.c): it notices within
 * a second (the MPM's maintenance tick), and Node starts in one or two more
 * on a busy host. A request waits that long rather than failing, as it would
 * wait in lodged's queue; the apps' workers keep serving those that go
 * straight to them meanwhile. Past it (a lodged that keeps dying waits
 * longer between starts, one with bad settings is not started again) the
 * request is 503, as without LodgeDaemon.
 */
#define LODGE_LODGED_RESTART_WAIT 10

/* ---------------------------------------------------------------- the end */

/* Closes what is held: its state is unknown (lodged stops a lent worker). */
static void close_held(lodge_exchange *x)
{
    if (x->worker != NULL) {
        lodge_conn_close(x->worker);
        x->worker = NULL;
    }
    if (x->conn != NULL) {
        lodge_conn_close(x->conn);
        x->conn = NULL;
    }
}

/* The request pool's cleanup: a connection still held is in an unknown state. */
static lodge_cleanup_rv release_on_cleanup(void *data)
{
    close_held(data);
    LODGE_CLEANUP_DONE;
}

/* Until a step records otherwise: nothing to log, anything held is broken. */
static void outcome_reset(lodge_exchange *x)
{
    memset(&x->outcome, 0, sizeof(x->outcome));
    x->outcome.lodged = LODGE_CLOSE;
    x->outcome.worker = LODGE_RELEASE_BROKEN;
}

/*
 * In step: a TUNNEL request's input is ended (BODY_END), then the worker
 * handed back (the rest of its body sent first: after an answer before the
 * whole body, the idle worker drops it), or lodged's connection put back on
 * the free list; either closed if anything is left over. Sending the body
 * can fail, which it records: the exchange then ends as stopped.
 */
static void hand_back(lodge_exchange *x)
{
    lodge_conn *c = LODGE_IN(x);

    if (c == NULL) {
        return;
    }
    if (lodge_end_input(x, c) != 0) {
        x->conn_broken = 1;
        x->worker_broken = 1;
    }
    if (c->pos != c->end) {
        lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00001)
                   "%s sent %lu bytes after the end of the response "
                   "(app %s); connection closed", lodge_source(x),
                   (unsigned long)(c->end - c->pos), x->dir->root);
        (void)lodge_lease_end(x, LODGE_RELEASE_BROKEN);
        close_held(x);
        return;
    }
    if (x->worker != NULL) {
        if (!lodge_body_sent(x) && lodge_stream_body(x) != OK) {
            return;
        }
        (void)lodge_lease_end(x, x->worker_broken ? LODGE_RELEASE_BROKEN
                                                  : LODGE_RELEASE_DONE);
        return;
    }
    if (x->conn_broken) {
        close_held(x);
        return;
    }
    x->conn = NULL;
    lodge_conn_give_back(c);
}

/*
 * Stopped early: the reason logged, a worker still in step told to stop and
 * handed back, any other handed back with its verdict; lodged's connection
 * closed. A worker lost brings lodged's word on why (lodge_lease_end): its
 * status is the answer, and the reason is logged only if none came.
 */
static int let_go(lodge_exchange *x, int rv)
{
    const lodge_outcome *o = &x->outcome;
    int lost = o->worker == LODGE_RELEASE_LOST && x->worker != NULL;
    int said = 0;

    if (o->reason != NULL && !lost) {
        lodge_rlog(o->level, x->r, "%s", o->reason);
    }
    if (x->worker != NULL && o->worker == LODGE_FINISH) {
        lodge_lease_finish(x);
    }
    else if (x->worker != NULL) {
        said = lodge_lease_end(x, o->worker);
    }
    close_held(x);
    if (lost && said == 0 && o->reason != NULL) {
        lodge_rlog(o->level, x->r, "%s", o->reason);
    }
    return said != 0 ? said : rv;
}

/* The one place an exchange ends: rv and x->outcome, into the answer. */
static int conclude(lodge_exchange *x, int rv)
{
    const lodge_outcome *o = &x->outcome;

    if (o->lodged == LODGE_KEEP) {
        hand_back(x);
    }
    if (o->lodged != LODGE_KEEP) {
        rv = let_go(x, rv);
    }
    if (o->cut) {
        lodge_abort_client(x->r);
        return OK;
    }
    if (o->retry_after != NULL) {
        apr_table_setn(x->r->err_headers_out, "Retry-After", o->retry_after);
    }
    return rv;
}

/* --------------------------------------------------------------- the way */

static int unreachable(lodge_exchange *x, int err)
{
    if (x->lodged_wait > 0 && (err == ECONNREFUSED || err == ENOENT)) {
        return lodge_fail(x->r, HTTP_SERVICE_UNAVAILABLE, LODGE_LOGNO(00085)
                          "cannot reach lodged at %s: %s, and Apache did "
                          "not start it again within %d s", x->socket,
                          lodge_errstr(x->r->pool, err), x->lodged_wait);
    }
    return lodge_fail(x->r, HTTP_SERVICE_UNAVAILABLE, LODGE_LOGNO(00024)
                      "cannot reach lodged at %s: %s", x->socket,
                      lodge_errstr(x->r->pool, err));
}

/* A connection to lodged: kept, or new (waiting for a lodged being restarted). */
static int reach_lodged(lodge_exchange *x, int fresh, lodge_conn **c)
{
    int rv = fresh ? lodge_conn_open(x->socket, c)
                   : lodge_conn_take(x->socket, c);

    if ((rv == -ECONNREFUSED || rv == -ENOENT || rv == -EACCES)
        && x->lodged_wait > 0) {
        rv = lodge_conn_open_within(x->socket, x->lodged_wait, c);
    }
    return rv;
}

/* Straight to the app when its route is known; LODGE_AGAIN: ask lodged. */
static int straight(lodge_exchange *x)
{
    int rv = lodge_route_try(x);

    return rv == OK ? lodge_read_response(x) : rv;
}

/*
 * One exchange, and once more on a fresh connection when a connection
 * from the free list turns out dead before any response byte (lodged
 * restarted, or closed it as idle). Only while every byte sent is still
 * at hand: a body streamed from the client cannot be sent twice.
 */
static int exchange(lodge_exchange *x)
{
    int attempt, rv, reused;

    if ((rv = straight(x)) != LODGE_AGAIN) {
        return rv;
    }
    for (attempt = 0; ; attempt++) {
        lodge_conn *c;

        rv = reach_lodged(x, attempt > 0, &c);
        if (rv != 0) {
            return unreachable(x, -rv);
        }
        x->conn = c;
        x->conn_broken = 0;
        rv = lodge_conn_set_timeout(c, x->timeout);
        if (rv != 0) {
            return lodge_fail(x->r, HTTP_INTERNAL_SERVER_ERROR,
                              LODGE_LOGNO(00025)
                              "cannot set a timeout on the socket to "
                              "lodged: %s", lodge_errstr(x->r->pool, -rv));
        }
        rv = lodge_send_request(x);
        if (rv == OK) {
            rv = lodge_read_response(x);
        }
        if (rv == LODGE_ROUTED) {
            hand_back(x);
            outcome_reset(x);
            if ((rv = straight(x)) != LODGE_AGAIN) {
                return rv;
            }
            /* The app's socket failed at once: lodged serves it after all. */
            x->first.data[1] &= (unsigned char)~LODGE_APP_ROUTE;
            attempt = -1;
            continue;
        }
        if (rv != LODGE_AGAIN) {
            return rv;
        }
        reused = c->reused;
        close_held(x);
        if (attempt > 0 || !reused || x->body_streamed) {
            return lodge_fail(x->r, HTTP_BAD_GATEWAY, LODGE_LOGNO(00026)
                              "lodged closed the connection before answering "
                              "(app %s)", x->dir->root);
        }
        lodge_rlog(APLOG_DEBUG, x->r, LODGE_LOGNO(00027)
                   "kept connection to lodged was dead; trying a new one");
    }
}

/*
 * The page a visitor gets when the app could not answer: what happened in words a
 * site's owner can act on, never a path or a message from the logs. An
 * ErrorDocument the site set for that status wins.
 */
static void explain(request_rec *r, int status)
{
    const char *text;

    if (ap_response_code_string(r, ap_index_of_response(status)) != NULL) {
        return;
    }
    switch (status) {
    case HTTP_BAD_GATEWAY:
        text = "The application behind this page failed to answer. "
               "If this is your site, its log (logs/lodge.log in the "
               "application's folder) says why.";
        break;
    case HTTP_GATEWAY_TIME_OUT:
        text = "The application took too long to answer and was stopped. "
               "If this is your site, see logs/lodge.log in the "
               "application's folder, or raise LodgeTimeout.";
        break;
    case HTTP_SERVICE_UNAVAILABLE:
        text = "The application is busy or restarting. Please try again "
               "in a moment.";
        break;
    case HTTP_INTERNAL_SERVER_ERROR:
        text = "The application could not be run. If this is your site, "
               "see logs/lodge.log in the application's folder.";
        break;
    default:
        return;
    }
    ap_custom_response(r, status, (char *)text);
}

/* The tenant's LodgeTimeout, within the host's cap. */
static int app_timeout(const lodge_dir_conf *d, const lodge_server_conf *s)
{
    int cap = s->limit_timeout > 0 ? s->limit_timeout : LODGE_TIMEOUT_HOST_MAX;
    int t = d->timeout != LODGE_UNSET ? d->timeout : LODGE_DEFAULT_TIMEOUT;

    return t < cap ? t : cap;
}

lodge_exchange *lodge_exchange_new(request_rec *r, const lodge_dir_conf *dir)
{
    const lodge_server_conf *s =
        ap_get_module_config(r->server->module_config, &lodge_module);
    lodge_exchange *x = apr_pcalloc(r->pool, sizeof(*x));

    x->r = r;
    x->dir = dir;
    x->socket = lodge_socket_path(s);
    /* A read from lodged: the app's time, and the grace (above). */
    x->timeout = app_timeout(dir, s) + LODGE_READ_GRACE;
    x->lodged_wait = s->daemon != 0 ? LODGE_LODGED_RESTART_WAIT : 0;
    /* A tunnel to the app is idle past the time a request may take. */
    x->tunnel_idle = app_timeout(dir, s);
    x->declared = -1;
    x->worker_pid = "?";
    outcome_reset(x);
    return x;
}

int lodge_run(lodge_exchange *x)
{
    request_rec *r = x->r;
    int rv;

    lodge_cleanup_register(r->pool, x, release_on_cleanup);
    lodge_client_timeout(r, "lodge: request body");
    rv = lodge_build_first(x);
    if (rv == OK) {
        rv = exchange(x);
    }
    rv = conclude(x, rv);
    lodge_client_timeout_end(r);
    if (ap_is_HTTP_ERROR(rv)) {
        explain(r, rv);
        return lodge_error_status(r, rv);
    }
    return rv;
}
