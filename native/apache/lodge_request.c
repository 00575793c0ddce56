/*
 * lodge_request.c: one request, from Apache to lodged and back.
 *
 *   claim     type_checker: a request under an app's directory is the app's,
 *             except an existing file in its static/ folder
 *   handle    APP REQ [BODY...] BODY_END out, as few writes as possible;
 *             HEAD DATA... END (or ERROR) in, each DATA passed straight on
 *
 * The response is flushed to the client whenever lodged has nothing more
 * for the moment, so server-sent events and slow streams are never held,
 * while a response that arrives at once still leaves in one write.
 */
#include "lodge_request.h"
#include "lodge_config.h"
#include "lodge_conn.h"
#include "lodge_frame.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Request body bytes per BODY frame: well under the protocol's 256 KiB,
 * big enough that an upload costs few writes on both sides.
 */
#define LODGE_BODY_CHUNK (64 * 1024)

/* The first write's buffer; APP and REQ of an ordinary request fit. */
#define LODGE_FIRST_SIZE 8192

/*
 * A read from lodged may wait the tenant's LodgeTimeout (or this default)
 * plus a grace period: lodged enforces the timeout itself and answers 504,
 * so the grace only catches a lodged that stopped answering at all.
 */
#define LODGE_DEFAULT_TIMEOUT 30
#define LODGE_READ_GRACE 60

/* The longest lodged ERROR message copied into one log line. */
#define LODGE_LOG_MESSAGE_MAX 2048

/*
 * Not an HTTP status, and far from Apache's own negative codes: the
 * connection died before any response byte, so the request may go again
 * on a fresh connection.
 */
#define LODGE_AGAIN (-1000)

typedef struct {
    request_rec *r;
    const lodge_dir_conf *dir;
    const char *socket;
    int timeout;                /* seconds per read from lodged */

    lodge_conn *conn;           /* held by this request; NULL when not */
    int conn_broken;            /* a send failed: never give it back */

    lodge_buf first;            /* APP REQ [BODY] [BODY_END], as first sent */
    long long body_read;
    int body_done;              /* BODY_END is in first, or was sent */
    int body_streamed;          /* BODY went out after first: no resend */
    unsigned char *chunk;       /* BODY frames after the first write */

    int responded;              /* lodged sent at least one byte */
    int committed;              /* the client may have seen the status */
    int unflushed;              /* the client has not seen all given it */
    long long declared;         /* the app's Content-Length, or -1 */
    long long sent;             /* body bytes given to Apache */
} lodge_exchange;

/* Decimal text of a 64-bit count: APR's formatter has no %lld. */
static const char *count_text(apr_pool_t *p, long long v)
{
    char digits[24];

    snprintf(digits, sizeof(digits), "%lld", v);
    return apr_pstrdup(p, digits);
}

/* ---------------------------------------------------------------- claim */

static size_t root_len(const char *root)
{
    /* An app at "/" would otherwise make every prefix test miss. */
    return strcmp(root, "/") == 0 ? 0 : strlen(root);
}

static int is_static(const request_rec *r, const lodge_dir_conf *d)
{
    size_t n = root_len(d->root);

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

    if (d == NULL || d->root == NULL || is_static(r, d)) {
        return DECLINED;
    }
    r->handler = LODGE_HANDLER;
    return OK;
}

/* --------------------------------------------------------------- errors */

static void hold(lodge_exchange *x, lodge_conn *c)
{
    x->conn = c;
    x->conn_broken = 0;
}

/* The request pool's cleanup: a connection still held is in an unknown state. */
static lodge_cleanup_rv release_on_cleanup(void *data)
{
    lodge_exchange *x = data;

    if (x->conn != NULL) {
        lodge_conn_close(x->conn);
        x->conn = NULL;
    }
    LODGE_CLEANUP_DONE;
}

static void drop(lodge_exchange *x)
{
    if (x->conn != NULL) {
        lodge_conn_close(x->conn);
        x->conn = NULL;
    }
}

/* After a clean END or ERROR: back to the free list, if nothing is left over. */
static void give_back(lodge_exchange *x)
{
    lodge_conn *c = x->conn;

    if (c == NULL) {
        return;
    }
    if (x->conn_broken || c->pos != c->end) {
        if (c->pos != c->end) {
            lodge_rlog(APLOG_WARNING, x->r, LODGE_LOGNO(00001)
                       "lodged sent %lu bytes after the end of the "
                       "response (app %s); connection closed",
                       (unsigned long)(c->end - c->pos), x->dir->root);
        }
        drop(x);
        return;
    }
    x->conn = NULL;
    lodge_conn_give_back(c);
}

/* Logs one error line and returns status, for a return in one line. */
static int fail(request_rec *r, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

static int fail(request_rec *r, int status, const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    lodge_rlog(APLOG_ERR, r, "%s", msg);
    return status;
}

/*
 * lodged (or the stream from it) went wrong: the connection is closed, and
 * the client gets status, or a cut-off response if it has seen the start.
 */
static int broken(lodge_exchange *x, int status, const char *fmt, ...)
    LODGE_PRINTF(3, 4);

static int broken(lodge_exchange *x, int status, const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(x->r->pool, fmt, ap);
    va_end(ap);
    lodge_rlog(APLOG_ERR, x->r, "%s (app %s)", msg, x->dir->root);
    drop(x);
    if (x->committed) {
        lodge_abort_client(x->r);
        return OK;
    }
    return status;
}

/* The client went away: lodged sees the connection close and stops the app. */
static int client_gone(lodge_exchange *x)
{
    lodge_rlog(APLOG_INFO, x->r, LODGE_LOGNO(00002)
               "client went away during the response (app %s)",
               x->dir->root);
    drop(x);
    lodge_abort_client(x->r);
    return OK;
}

/* ------------------------------------------------------------- requests */

/*
 * SCRIPT_NAME is the request's URI minus the part that names a place
 * below the app root: what is left of r->filename past the root, plus
 * r->path_info. Aliases and user directories come out right this way.
 */
static void split_uri(request_rec *r, const lodge_dir_conf *d,
                      const char **script_name, const char **path_info)
{
    size_t n = root_len(d->root);
    const char *below = "";
    const char *rel;
    size_t ulen, rlen;

    if (r->filename != NULL && strncmp(r->filename, d->root, n) == 0) {
        below = r->filename + n;
    }
    rel = r->path_info && *r->path_info
          ? apr_pstrcat(r->pool, below, r->path_info, NULL) : below;
    ulen = strlen(r->uri);
    rlen = strlen(rel);
    if ((rlen == 0 || rel[0] == '/') && rlen <= ulen
        && strcmp(r->uri + ulen - rlen, rel) == 0) {
        *script_name = apr_pstrmemdup(r->pool, r->uri, ulen - rlen);
        *path_info = rel;
    }
    else {
        /* A rewrite made the two disagree; the whole URI is the app's. */
        *script_name = "";
        *path_info = r->uri;
    }
}

static long long or_zero(long long v)
{
    return v == LODGE_UNSET ? 0 : v;
}

/* The host's LodgeLimit caps, only those it set: lodged takes the lower of each
 * and its own, so a cap here can only tighten what lodged.json allows. */
static void add_host_limits(lodge_buf *b, const lodge_server_conf *s)
{
    if (s == NULL) {
        return;
    }
    if (s->limit_timeout > 0) lodge_pair_add_num(b, "limit.timeout", s->limit_timeout);
    if (s->limit_memory > 0) lodge_pair_add_num(b, "limit.memory", s->limit_memory);
    if (s->limit_processes > 0) lodge_pair_add_num(b, "limit.processes", s->limit_processes);
    if (s->limit_cpu > 0) lodge_pair_add_num(b, "limit.cpu", s->limit_cpu);
    if (s->limit_idle > 0) lodge_pair_add_num(b, "limit.idle", s->limit_idle);
    if (s->limit_tasks > 0) lodge_pair_add_num(b, "limit.tasks", s->limit_tasks);
}

/* APP: in a fixed order, because lodged keys its pools by these bytes. */
static int add_app(lodge_exchange *x)
{
    const lodge_dir_conf *d = x->dir;
    lodge_buf *b = &x->first;
    struct stat st;
    size_t at;
    int i;

    if (stat(d->root, &st) != 0) {
        int e = errno;

        return fail(x->r, HTTP_INTERNAL_SERVER_ERROR, LODGE_LOGNO(00003)
                    "cannot stat app root %s: %s", d->root,
                    lodge_errstr(x->r->pool, e));
    }
    at = lodge_frame_open(b, LODGE_FRAME_APP);
    lodge_pair_add_str(b, "root", d->root);
    lodge_pair_add_str(b, "kind", d->kind);
    lodge_pair_add_str(b, "entry", d->entry);
    lodge_pair_add_str(b, "callable", d->callable);
    lodge_pair_add_num(b, "uid", (long long)st.st_uid);
    lodge_pair_add_num(b, "gid", (long long)st.st_gid);
    lodge_pair_add_num(b, "timeout", or_zero(d->timeout));
    lodge_pair_add_num(b, "memory", or_zero(d->memory));
    lodge_pair_add_num(b, "processes", or_zero(d->processes));
    lodge_pair_add_num(b, "cpu", or_zero(d->cpu));
    lodge_pair_add_num(b, "idle", or_zero(d->idle));
    add_host_limits(b, ap_get_module_config(x->r->server->module_config,
                                            &lodge_module));
    lodge_pair_add_str(b, "config", d->config);
    if (d->env != NULL) {
        const lodge_env *e = (const lodge_env *)d->env->elts;

        for (i = 0; i < d->env->nelts; i++) {
            size_t n = strlen(e[i].name);
            char *name = lodge_pair_add_name_slot(b, 4 + n, e[i].value,
                                                  strlen(e[i].value));
            if (name != NULL) {
                memcpy(name, "env.", 4);
                memcpy(name + 4, e[i].name, n);
            }
        }
    }
    lodge_frame_close(b, at);
    return OK;
}

/*
 * Header names become HTTP_*; one with other than letters, digits and '-'
 * is left out, as httpd's CGI does, so "X_User" cannot pose as "X-User".
 */
static int cgi_name_length(const char *key, size_t *len)
{
    const char *p;

    for (p = key; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '-')) {
            return 0;
        }
    }
    *len = (size_t)(p - key);
    return *len > 0;
}

static void add_headers(lodge_buf *b, request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *h = (const apr_table_entry_t *)arr->elts;
    int i, j;

    for (i = 0; i < arr->nelts; i++) {
        const char *value = h[i].val;
        size_t n, k;
        char *name;

        if (h[i].key == NULL || value == NULL
            || !cgi_name_length(h[i].key, &n)
            /* These have their own variables; HTTP_PROXY is "httpoxy". */
            || ap_cstr_casecmp(h[i].key, "Content-Type") == 0
            || ap_cstr_casecmp(h[i].key, "Content-Length") == 0
            || ap_cstr_casecmp(h[i].key, "Proxy") == 0) {
            continue;
        }
        /* A repeated header goes once, its values joined, at its first place. */
        for (j = 0; j < i; j++) {
            if (h[j].key != NULL && ap_cstr_casecmp(h[j].key, h[i].key) == 0) {
                break;
            }
        }
        if (j < i) {
            continue;
        }
        for (j = i + 1; j < arr->nelts; j++) {
            if (h[j].key != NULL && h[j].val != NULL
                && ap_cstr_casecmp(h[j].key, h[i].key) == 0) {
                value = apr_pstrcat(r->pool, value, ", ", h[j].val, NULL);
            }
        }
        name = lodge_pair_add_name_slot(b, 5 + n, value, strlen(value));
        if (name == NULL) {
            continue;
        }
        memcpy(name, "HTTP_", 5);
        for (k = 0; k < n; k++) {
            char c = h[i].key[k];

            name[5 + k] = c == '-' ? '_'
                        : (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
    }
}

/* REQ: the CGI variables of PEP 3333, as PROTOCOL.md lists them. */
static void add_req(lodge_exchange *x)
{
    request_rec *r = x->r;
    lodge_buf *b = &x->first;
    const char *script_name, *path_info, *v;
    size_t at;

    split_uri(r, x->dir, &script_name, &path_info);
    at = lodge_frame_open(b, LODGE_FRAME_REQ);
    lodge_pair_add_str(b, "REQUEST_METHOD", r->method);
    lodge_pair_add_str(b, "SCRIPT_NAME", script_name);
    lodge_pair_add_str(b, "PATH_INFO", path_info);
    lodge_pair_add_str(b, "QUERY_STRING", r->args ? r->args : "");
    if ((v = apr_table_get(r->headers_in, "Content-Type")) != NULL) {
        lodge_pair_add_str(b, "CONTENT_TYPE", v);
    }
    if ((v = apr_table_get(r->headers_in, "Content-Length")) != NULL
        && apr_table_get(r->headers_in, "Transfer-Encoding") == NULL) {
        lodge_pair_add_str(b, "CONTENT_LENGTH", v);
    }
    lodge_pair_add_str(b, "SERVER_NAME", ap_get_server_name(r));
    lodge_pair_add_num(b, "SERVER_PORT", (long long)ap_get_server_port(r));
    lodge_pair_add_str(b, "SERVER_PROTOCOL", r->protocol);
    lodge_pair_add_str(b, "REMOTE_ADDR", lodge_client_ip(r));
    lodge_pair_add_num(b, "REMOTE_PORT", (long long)lodge_client_port(r));
    if (lodge_user(r) != NULL) {
        lodge_pair_add_str(b, "REMOTE_USER", lodge_user(r));
        if (lodge_auth_type(r) != NULL) {
            lodge_pair_add_str(b, "AUTH_TYPE", lodge_auth_type(r));
        }
    }
    if (lodge_is_https(r)) {
        lodge_pair_add_str(b, "HTTPS", "on");
    }
    lodge_pair_add_str(b, "REQUEST_URI", r->unparsed_uri);
    lodge_pair_add_str(b, "DOCUMENT_ROOT", ap_document_root(r));
    add_headers(b, r);
    lodge_frame_close(b, at);
}

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

    while (got < room) {
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
    /* Without BODY_END lodged stops the app's request when the socket closes. */
    drop(x);
    lodge_rlog(APLOG_INFO, x->r, LODGE_LOGNO(00004)
               "the request body could not be read from the client "
               "(after %s bytes); request dropped (app %s)",
               count_text(x->r->pool, x->body_read), x->dir->root);
    return HTTP_BAD_REQUEST;
}

/* APP REQ, then as much of the body as has come, then BODY_END if it all has. */
static int build_first(lodge_exchange *x)
{
    request_rec *r = x->r;
    lodge_buf *b = &x->first;
    int rv;

    lodge_buf_init(b, r->pool, LODGE_FIRST_SIZE);
    if ((rv = add_app(x)) != OK) {
        return rv;
    }
    add_req(x);

    rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rv != OK) {
        return rv;
    }
    if (ap_should_client_block(r)) {
        size_t at = lodge_frame_open(b, LODGE_FRAME_BODY);
        char *to = (char *)lodge_buf_extend(b, LODGE_BODY_CHUNK);
        long n = read_body(x, to, LODGE_BODY_CHUNK, &x->body_done);

        if (n < 0) {
            return body_failed(x);
        }
        b->len = at + (n > 0 ? LODGE_FRAME_HEADER_SIZE + (size_t)n : 0);
        if (n > 0) {
            lodge_frame_close(b, at);
        }
    }
    else {
        x->body_done = 1;
    }
    if (x->body_done) {
        lodge_frame_add_empty(b, LODGE_FRAME_BODY_END);
    }
    if (b->failed) {
        return fail(r, HTTP_BAD_REQUEST, LODGE_LOGNO(00005)
                    "request too large for the frame protocol (a name over "
                    "64 KiB or a frame over 16 MiB; app %s)", x->dir->root);
    }
    return OK;
}

/* The rest of the body, a BODY frame per read, BODY_END with the last. */
static int stream_body(lodge_exchange *x)
{
    const size_t h = LODGE_FRAME_HEADER_SIZE;

    if (x->chunk == NULL) {
        x->chunk = apr_palloc(x->r->pool, h + LODGE_BODY_CHUNK + h);
    }
    while (!x->body_done) {
        long n = read_body(x, (char *)x->chunk + h, LODGE_BODY_CHUNK,
                           &x->body_done);
        size_t len = 0;
        int rv;

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
        rv = lodge_conn_send(x->conn, x->chunk, len);
        if (rv == -ETIMEDOUT) {
            return broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00006)
                          "lodged took no request body for %d s",
                          x->timeout);
        }
        if (rv != 0) {
            /* Maybe lodged answered early and closed: read what it said. */
            x->conn_broken = 1;
            return OK;
        }
    }
    return OK;
}

static int send_request(lodge_exchange *x)
{
    int rv = lodge_conn_send(x->conn, x->first.data, x->first.len);

    if (rv == -ETIMEDOUT) {
        return broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00007)
                      "lodged took no request for %d s", x->timeout);
    }
    if (rv != 0) {
        x->conn_broken = 1;
        return OK;
    }
    return x->body_done ? OK : stream_body(x);
}

/* ------------------------------------------------------------ responses */

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
    long n = -EAGAIN;

    if (x->unflushed) {
        n = lodge_conn_fill(x->conn, 0);
        if (n == -EAGAIN && flush_client(x) != 0) {
            *result = client_gone(x);
            return 0;
        }
    }
    if (n == -EAGAIN) {
        /* Waiting on the app is bounded by x->timeout, not the client's. */
        lodge_client_timeout_end(x->r);
        n = lodge_conn_fill(x->conn, 1);
    }
    if (n > 0) {
        x->responded = 1;
        return 1;
    }
    if (!x->responded && (n == 0 || n == -ECONNRESET || n == -EPIPE)) {
        *result = LODGE_AGAIN;
    }
    else if (n == 0) {
        *result = broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00008)
                         "lodged closed the connection in the middle of "
                         "the response");
    }
    else if (n == -ETIMEDOUT) {
        *result = broken(x, HTTP_GATEWAY_TIME_OUT, LODGE_LOGNO(00009)
                         "lodged sent nothing for %d s", x->timeout);
    }
    else {
        *result = broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00010)
                         "reading from lodged failed: %s",
                         lodge_errstr(x->r->pool, (int)-n));
    }
    return 0;
}

/* Until n unread bytes are in the buffer (n <= LODGE_CONN_BUFSIZE). */
static int need(lodge_exchange *x, size_t n, int *result)
{
    while (x->conn->end - x->conn->pos < n) {
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
    lodge_conn *c = x->conn;
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
        return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00011)
                      "lodged sent a HEAD frame of %lu bytes, too short "
                      "for a status", (unsigned long)len);
    }
    status = lodge_get_u16(p);
    if (status < 200 || status > 599) {
        return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00012)
                      "lodged sent response status %u; only 200-599 can "
                      "be passed on", status);
    }
    lodge_pairs_init(&it, p + 2, len - 2);
    while ((rv = lodge_pairs_next(&it, &h)) == 1) {
        if (!header_name_ok(h.name, h.name_len)) {
            return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00013)
                          "the app sent a response header whose name is "
                          "not a token: '%s'",
                          apr_pstrmemdup(r->pool, h.name,
                                         h.name_len > 64 ? 64 : h.name_len));
        }
        if (!header_value_ok(h.value, h.value_len)) {
            return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00014)
                          "the app sent response header %s with a CR, LF "
                          "or NUL in its value",
                          apr_pstrmemdup(r->pool, h.name, h.name_len));
        }
        if (is_header(&h, "Content-Length") && content_length(&h) < 0) {
            return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00015)
                          "the app sent Content-Length '%s', not a number",
                          apr_pstrmemdup(r->pool, h.value,
                                         h.value_len > 64 ? 64 : h.value_len));
        }
    }
    if (rv < 0) {
        return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00016)
                      "lodged sent a HEAD frame whose headers run past its "
                      "%lu bytes", (unsigned long)len);
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
    lodge_conn *c = x->conn;

    while (len > 0) {
        size_t n = c->end - c->pos;

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
            *result = broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00017)
                             "the app sent more than its Content-Length "
                             "of %s bytes", count_text(r->pool, x->declared));
            return 0;
        }
        /* After commit: 1.3 disarms every timeout once the headers are out. */
        commit(x);
        lodge_client_timeout(r, "lodge: sending the response");
        if (lodge_wants_body(r)
            && (lodge_write_body(r, c->buf + c->pos, n) != 0
                || r->connection->aborted)) {
            *result = client_gone(x);
            return 0;
        }
        c->pos += n;
        len -= n;
        x->sent += (long long)n;
        x->unflushed = 1;
    }
    return 1;
}

static int at_end(lodge_exchange *x)
{
    if (length_checked(x) && x->sent != x->declared) {
        return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00018)
                      "the app sent %s bytes after a Content-Length of %s",
                      count_text(x->r->pool, x->sent),
                      count_text(x->r->pool, x->declared));
    }
    give_back(x);
    return OK;
}

/* Control characters would split or forge log lines. */
static const char *loggable(apr_pool_t *p, const unsigned char *s, size_t n)
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
        return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00019)
                      "lodged sent an ERROR frame of %lu bytes, too short "
                      "for a status and Retry-After", (unsigned long)len);
    }
    if ((p = payload(x, len, &result)) == NULL) {
        return result;
    }
    status = lodge_get_u16(p);
    retry_after = lodge_get_u16(p + 2);
    lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00020) "%s",
               loggable(r->pool, p + 4, len - 4));
    give_back(x);
    if (status < 400 || status > 599) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00021)
                   "lodged sent ERROR status %u; answering 502 instead",
                   status);
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
    return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00022)
                  "lodged sent a frame of type 0x%02x (%s, %lu bytes) %s",
                  (unsigned)f->type, lodge_frame_name(f->type), f->length,
                  head_seen ? "after HEAD" : "where HEAD or ERROR belongs");
}

static int read_response(lodge_exchange *x)
{
    int head_seen = 0;
    int result, rv;

    for (;;) {
        lodge_frame_head f;
        const unsigned char *p;

        if (!need(x, LODGE_FRAME_HEADER_SIZE, &result)) {
            return result;
        }
        rv = lodge_frame_get_header(x->conn->buf + x->conn->pos, &f);
        x->conn->pos += LODGE_FRAME_HEADER_SIZE;
        if (rv != 0) {
            return broken(x, HTTP_BAD_GATEWAY, LODGE_LOGNO(00023)
                          "lodged sent a %s frame (type 0x%02x) of %lu "
                          "bytes, over the %lu-byte limit",
                          lodge_frame_name(f.type), (unsigned)f.type,
                          f.length, LODGE_FRAME_MAX);
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
            return at_end(x);
        case LODGE_FRAME_ERROR:
            return error_frame(x, f.length);
        default:
            return unexpected(x, &f, head_seen);
        }
    }
}

/* -------------------------------------------------------------- handler */

static int unreachable(lodge_exchange *x, int err)
{
    return fail(x->r, HTTP_SERVICE_UNAVAILABLE, LODGE_LOGNO(00024)
                "cannot reach lodged at %s: %s", x->socket,
                lodge_errstr(x->r->pool, err));
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

    for (attempt = 0; ; attempt++) {
        lodge_conn *c;

        rv = attempt == 0 ? lodge_conn_take(x->socket, &c)
                          : lodge_conn_open(x->socket, &c);
        if (rv != 0) {
            return unreachable(x, -rv);
        }
        hold(x, c);
        rv = lodge_conn_set_timeout(c, x->timeout);
        if (rv != 0) {
            drop(x);
            return fail(x->r, HTTP_INTERNAL_SERVER_ERROR, LODGE_LOGNO(00025)
                        "cannot set a timeout on the socket to lodged: %s",
                        lodge_errstr(x->r->pool, -rv));
        }
        rv = send_request(x);
        if (rv == OK && x->conn != NULL) {
            rv = read_response(x);
        }
        if (rv != LODGE_AGAIN) {
            return rv;
        }
        reused = c->reused;
        drop(x);
        if (attempt > 0 || !reused || x->body_streamed) {
            return fail(x->r, HTTP_BAD_GATEWAY, LODGE_LOGNO(00026)
                        "lodged closed the connection before answering "
                        "(app %s)", x->dir->root);
        }
        lodge_rlog(APLOG_DEBUG, x->r, LODGE_LOGNO(00027)
                   "kept connection to lodged was dead; trying a new one");
    }
}

int lodge_handle(request_rec *r)
{
    const lodge_server_conf *s;
    lodge_exchange *x;
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
    x = apr_pcalloc(r->pool, sizeof(*x));
    x->r = r;
    x->dir = ap_get_module_config(r->per_dir_config, &lodge_module);
    if (x->dir == NULL || x->dir->root == NULL) {
        return fail(r, HTTP_INTERNAL_SERVER_ERROR, LODGE_LOGNO(00029)
                    "handler %s is set for %s, but no LodgeApp applies "
                    "there", LODGE_HANDLER, r->filename ? r->filename : r->uri);
    }
    s = ap_get_module_config(r->server->module_config, &lodge_module);
    x->socket = lodge_socket_path(s);
    x->timeout = (x->dir->timeout != LODGE_UNSET ? x->dir->timeout
                  : LODGE_DEFAULT_TIMEOUT) + LODGE_READ_GRACE;
    x->declared = -1;
    lodge_cleanup_register(r->pool, x, release_on_cleanup);

    lodge_client_timeout(r, "lodge: request body");
    rv = build_first(x);
    if (rv == OK) {
        rv = exchange(x);
    }
    lodge_client_timeout_end(r);
    return ap_is_HTTP_ERROR(rv) ? lodge_error_status(r, rv) : rv;
}
