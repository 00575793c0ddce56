/*
 * lodge_request.c: one request, from Apache to lodged and back.
 *
 *   claim     type_checker: a request under an app's directory is the app's,
 *             except an existing file in its static/ folder
 *   handle    APP REQ [BODY...] BODY_END out, as few writes as possible
 *             (lodge_environ.c, lodge_send.c); HEAD DATA... END (or ERROR)
 *             in, each DATA passed straight on (lodge_response.c)
 *
 * Here too: the connection a request holds, and how a failure is logged
 * and answered (lodge_exchange.h).
 */
#include "lodge_request.h"
#include "lodge_dashboard.h"
#include "lodge_exchange.h"
#include "lodge_lease.h"
#include "lodge_response.h"
#include "lodge_route.h"
#include "lodge_send.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

/* Decimal text of a 64-bit count: APR's formatter has no %lld. */
const char *lodge_count_text(apr_pool_t *p, long long v)
{
    char digits[24];

    snprintf(digits, sizeof(digits), "%lld", v);
    return apr_pstrdup(p, digits);
}

/* Control characters would split or forge log lines. */
const char *lodge_loggable(apr_pool_t *p, const unsigned char *s, size_t n)
{
    char *out;
    size_t i;

    if (n > LODGE_LOG_MESSAGE_MAX) {
        n = LODGE_LOG_MESSAGE_MAX;
    }
    out = apr_pstrmemdup(p, (const char *)s, n);
    for (i = 0; i < n; i++) {
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
            out[i] = ' ';
        }
    }
    return out;
}

const char *lodge_source(const lodge_exchange *x)
{
    return x->worker != NULL ? "the app's worker" : "lodged";
}

/* ---------------------------------------------------------------- claim */

size_t lodge_root_len(const char *root)
{
    /* An app at "/" would otherwise make every prefix test miss. */
    return strcmp(root, "/") == 0 ? 0 : strlen(root);
}

static int is_static(const request_rec *r, const lodge_dir_conf *d)
{
    size_t n = lodge_root_len(d->root);

    return r->filename != NULL && lodge_is_regular_file(r)
        && strncmp(r->filename, d->root, n) == 0
        && strncmp(r->filename + n, "/static/", 8) == 0;
}

/*
 * Runs before mod_mime and mod_negotiation, so that neither a handler
 * from AddHandler nor a MultiViews variant (app.py for /app) can serve a
 * tenant's source. Sub-requests are marked too, for the same reason; the
 * handler then refuses them.
 */
int lodge_claim(request_rec *r)
{
    const lodge_dir_conf *d =
        ap_get_module_config(r->per_dir_config, &lodge_module);

    /*
     * Where the server config set the status location, its handler wins
     * (on 1.3 the first type checker to claim a request is the only one,
     * so mod_mime's SetHandler would never be applied).
     */
    if (d == NULL || d->root == NULL || is_static(r, d) || d->status == 1) {
        return DECLINED;
    }
    r->handler = LODGE_HANDLER;
    return OK;
}

/* ---------------------------------------------------- connection, errors */

static void hold(lodge_exchange *x, lodge_conn *c)
{
    x->conn = c;
    x->conn_broken = 0;
}

/* The request pool's cleanup: a connection still held is in an unknown state. */
static lodge_cleanup_rv release_on_cleanup(void *data)
{
    lodge_exchange *x = data;

    if (x->worker != NULL) {
        lodge_conn_close(x->worker);
        x->worker = NULL;
    }
    if (x->conn != NULL) {
        lodge_conn_close(x->conn);
        x->conn = NULL;
    }
    LODGE_CLEANUP_DONE;
}

/* lodged sees the connection close, and stops a worker it lent. */
void lodge_drop(lodge_exchange *x)
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

/* Logs one error line and returns status, for a return in one line. */
int lodge_fail(request_rec *r, int status, const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    lodge_rlog(APLOG_ERR, r, "%s", msg);
    return status;
}

static void log_failure(lodge_exchange *x, const char *fmt, va_list ap)
{
    lodge_rlog(APLOG_ERR, x->r, "%s (app %s)",
               apr_pvsprintf(x->r->pool, fmt, ap), x->dir->root);
}

/* After the exchange has let go: status, or a cut-off if the client saw the start. */
static int answer(lodge_exchange *x, int status)
{
    if (x->committed) {
        lodge_abort_client(x->r);
        return OK;
    }
    return status;
}

/*
 * Lets go of lodged and of a lent worker: one whose stream is still in step
 * is told to stop and handed back, any other is left to lodged to stop.
 */
static int let_go(lodge_exchange *x, int status, int in_step)
{
    if (x->worker != NULL && in_step) {
        lodge_lease_finish(x);
    }
    else if (x->worker != NULL) {
        (void)lodge_lease_end(x, LODGE_RELEASE_BROKEN);
    }
    lodge_drop(x);
    return answer(x, status);
}

/*
 * lodged or the worker went wrong: the connection is closed (and a lent
 * worker with it, which lodged then stops), and the client gets status,
 * or a cut-off response if it has seen the start.
 */
int lodge_broken(lodge_exchange *x, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_failure(x, fmt, ap);
    va_end(ap);
    return let_go(x, status, 0);
}

int lodge_refused(lodge_exchange *x, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_failure(x, fmt, ap);
    va_end(ap);
    return let_go(x, status, 1);
}

int lodge_client_gone(lodge_exchange *x, const char *when)
{
    lodge_rlog(APLOG_INFO, x->r, LODGE_LOGNO(00002)
               "client went away %s (app %s)", when, x->dir->root);
    if (x->worker != NULL) {
        lodge_lease_finish(x);
    }
    lodge_drop(x);
    lodge_abort_client(x->r);
    return OK;
}

/* -------------------------------------------------------------- handler */

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

/*
 * One exchange, and once more on a fresh connection when a connection
 * from the free list turns out dead before any response byte (lodged
 * restarted, or closed it as idle). Only while every byte sent is still
 * at hand: a body streamed from the client cannot be sent twice.
 */
static int exchange(lodge_exchange *x)
{
    int attempt, rv, reused;

    if ((rv = lodge_route_try(x)) != LODGE_AGAIN) {
        return rv;
    }
    for (attempt = 0; ; attempt++) {
        lodge_conn *c;

        rv = reach_lodged(x, attempt > 0, &c);
        if (rv != 0) {
            return unreachable(x, -rv);
        }
        hold(x, c);
        rv = lodge_conn_set_timeout(c, x->timeout);
        if (rv != 0) {
            lodge_drop(x);
            return lodge_fail(x->r, HTTP_INTERNAL_SERVER_ERROR,
                              LODGE_LOGNO(00025)
                              "cannot set a timeout on the socket to "
                              "lodged: %s", lodge_errstr(x->r->pool, -rv));
        }
        rv = lodge_send_request(x);
        if (rv == OK && x->conn != NULL) {
            rv = lodge_read_response(x);
        }
        if (rv == LODGE_ROUTED) {
            if ((rv = lodge_route_try(x)) != LODGE_AGAIN) {
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
        lodge_drop(x);
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
    lodge_client_timeout_end(r);
    if (ap_is_HTTP_ERROR(rv)) {
        explain(r, rv);
        return lodge_error_status(r, rv);
    }
    return rv;
}

int lodge_handle(request_rec *r)
{
    const lodge_dir_conf *d;
    int rv;

    if (r->handler == NULL || strcmp(r->handler, LODGE_HANDLER) != 0) {
        return DECLINED;
    }
    if (r->main != NULL) {
        /*
         * Running an app inside another response (SSI and the like) is not
         * supported; serving its file instead would show its source.
         */
        lodge_rlog(APLOG_DEBUG, r, LODGE_LOGNO(00028)
                   "sub-request for %s refused: apps answer only requests",
                   r->uri);
        return HTTP_NOT_FOUND;
    }
    d = ap_get_module_config(r->per_dir_config, &lodge_module);
    if (d == NULL || d->root == NULL) {
        return lodge_fail(r, HTTP_INTERNAL_SERVER_ERROR, LODGE_LOGNO(00029)
                          "handler %s is set for %s, but no LodgeApp "
                          "applies there", LODGE_HANDLER,
                          r->filename ? r->filename : r->uri);
    }
    rv = lodge_dashboard_handle(r, d);
    if (rv != DECLINED) {
        return rv;
    }
    return lodge_run(lodge_exchange_new(r, d));
}
