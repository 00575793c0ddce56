/*
 * lodge_compat.h: every difference between the Apache 1.3 and 2.4 module APIs
 * that mod_lodge meets, so that the rest of the module is written once.
 *
 * The request path uses the APR names (apr_table_get, apr_pool_t, ...); on
 * 1.3 they are mapped onto the ap_* calls that do the same. Anything that
 * has no common shape (logging, cleanups, timeouts, the mutex, the
 * directive-table rows) gets a lodge_* macro or inline function here, and
 * no other file tests LODGE_APACHE13 except mod_lodge.c for the module
 * record itself.
 */
#ifndef LODGE_COMPAT_H
#define LODGE_COMPAT_H

#include "httpd.h"

/* Only 2.x defines AP_SERVER_MAJORVERSION_NUMBER; 1.3 has APACHE_RELEASE. */
#if defined(APACHE_RELEASE) && !defined(AP_SERVER_MAJORVERSION_NUMBER)
#define LODGE_APACHE13 1
/* 1.3 declares ap_check_cmd_context() for the core's use only. */
#define CORE_PRIVATE
#else
#define LODGE_APACHE13 0
#endif

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Every log line starts "LGnnnnn: lodge: ", numbered the way httpd's own
 * carry "AHnnnnn: ", so that a line can be searched for across versions
 * and releases. Numbers are never reused; the next free one is noted in
 * mod_lodge.c.
 */
#define LODGE_LOGNO(n) "LG" #n ": lodge: "

/* Lets the compiler check the arguments of our printf-like helpers. */
#if defined(__GNUC__)
#define LODGE_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define LODGE_PRINTF(fmt, first)
#endif

#if LODGE_APACHE13
/* ------------------------------------------------------------ Apache 1.3 */

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "buff.h"
#include "http_conf_globals.h"
#include "scoreboard.h"

#define LODGE_MODULE_DATA MODULE_VAR_EXPORT
#define LODGE_INLINE __inline__

typedef pool apr_pool_t;
typedef table apr_table_t;
typedef array_header apr_array_header_t;
typedef table_entry apr_table_entry_t;

#define apr_palloc ap_palloc
#define apr_pcalloc ap_pcalloc
#define apr_pstrdup ap_pstrdup
#define apr_pstrmemdup ap_pstrndup
#define apr_pstrcat ap_pstrcat
#define apr_psprintf ap_psprintf
#define apr_pvsprintf ap_pvsprintf
#define apr_table_get ap_table_get
#define apr_table_set ap_table_set
#define apr_table_setn ap_table_setn
#define apr_table_add ap_table_add
#define apr_table_elts ap_table_elts
#define apr_array_make ap_make_array
#define apr_array_push ap_push_array
#define ap_cstr_casecmp strcasecmp

#define lodge_errstr(p, err) ((void)(p), strerror(err))

/*
 * 1.3 copies a request's first warning or error into the "error-notes"
 * note, which its 502 page shows the visitor. Ours name sockets, app roots
 * and lodged's messages: they are for the host's log only, so an empty
 * note goes in first, as http_log.c suggests. And 1.3 appends
 * strerror(errno) unless told not to; messages carry their own.
 */
static LODGE_INLINE request_rec *lodge_quiet_notes(request_rec *r)
{
    if (ap_table_get(r->notes, "error-notes") == NULL) {
        ap_table_setn(r->notes, "error-notes", "");
    }
    return r;
}
#define lodge_rlog(level, r, ...) \
    ap_log_rerror(APLOG_MARK, (level) | APLOG_NOERRNO, lodge_quiet_notes(r), \
                  __VA_ARGS__)
#define lodge_slog(level, s, ...) \
    ap_log_error(APLOG_MARK, (level) | APLOG_NOERRNO, (s), __VA_ARGS__)

typedef void lodge_cleanup_rv;
#define LODGE_CLEANUP_DONE return
#define lodge_cleanup_register(p, data, fn) \
    ap_register_cleanup((p), (data), (fn), ap_null_cleanup)
#define lodge_cleanup_kill(p, data, fn) ap_kill_cleanup((p), (data), (fn))

/* Directive rows: 1.3's setter pointer is untyped, so the cast is safe. */
typedef const char *(*lodge_cmd_fn)();
#define LODGE_TAKE1(name, fn, where, help) \
    { name, (lodge_cmd_fn)(fn), NULL, where, TAKE1, help }
#define LODGE_TAKE2(name, fn, where, help) \
    { name, (lodge_cmd_fn)(fn), NULL, where, TAKE2, help }
#define LODGE_TAKE12(name, fn, where, help) \
    { name, (lodge_cmd_fn)(fn), NULL, where, TAKE12, help }
#define LODGE_FLAG(name, fn, where, help) \
    { name, (lodge_cmd_fn)(fn), NULL, where, FLAG, help }
#define LODGE_RAW_ARGS(name, fn, where, help) \
    { name, (lodge_cmd_fn)(fn), NULL, where, RAW_ARGS, help }
#define LODGE_CMD_END { NULL }

/* The file a directive came from: the .htaccess for tenant lines. */
#define lodge_cmd_file(cmd) \
    ((cmd)->config_file ? (cmd)->config_file->name : "")

/* 1.3 keeps no parsed tree to look at; a regex path rarely starts with '/'. */
#define lodge_cmd_in_regex_section(cmd) ((void)(cmd), 0)

#define lodge_client_ip(r) ((r)->connection->remote_ip)
#define lodge_client_port(r) \
    ((unsigned)ntohs((r)->connection->remote_addr.sin_port))
#define lodge_user(r) ((r)->connection->user)
/* Whether a Require applies, so that a user set is one authentication checked. */
#define lodge_authn_required(r) ap_some_auth_required(r)
#define lodge_auth_type(r) ((r)->connection->ap_auth_type)
#define lodge_is_https(r) (strcmp(ap_http_method(r), "https") == 0)
#define lodge_scheme(r) ap_http_method(r)
#define lodge_server_software() ap_get_server_version()
/* 1.3 has no context of an Alias: the prefix is empty, the root the site's. */
#define lodge_context_prefix(r) ((void)(r), "")
#define lodge_context_document_root(r) ap_document_root(r)

/*
 * 2.4 lower-cases the host name it takes from Host, and merges repeated
 * slashes of the path into one (MergeSlashes); 1.3 does neither, so an app
 * would see "//" on one and not the other.
 */
static LODGE_INLINE const char *lodge_server_name(request_rec *r)
{
    char *name = apr_pstrdup(r->pool, ap_get_server_name(r));

    ap_str_tolower(name);
    return name;
}

static LODGE_INLINE const char *lodge_merge_slashes(request_rec *r, const char *path)
{
    char *merged;

    if (strstr(path, "//") == NULL) {
        return path;
    }
    merged = apr_pstrdup(r->pool, path);
    ap_no2slash(merged);
    return merged;
}
#define lodge_is_regular_file(r) \
    ((r)->finfo.st_mode != 0 && S_ISREG((r)->finfo.st_mode))
#define lodge_set_content_type(r, type) ((r)->content_type = (type))
#define lodge_client_fd(r) ap_bfileno((r)->connection->client, B_RD)

/*
 * 1.3 sends the header block on request, and writes a body even for HEAD,
 * so mod_lodge drops it (lodge_wants_body).
 *
 * Its own chunked coding pads the size of a chunk under 256 bytes with
 * spaces ("1b \r\n"), which HTTP/1.1 does not allow and strict clients
 * (Node's parser among them) reject. So once the headers are out, the
 * response's chunks are framed here; r->chunked stays set, and 1.3 still
 * writes the last chunk when the request ends (or not, once aborted).
 */
static LODGE_INLINE void lodge_send_headers(request_rec *r)
{
    ap_send_http_header(r);
    if (r->chunked) {
        ap_bsetflag(r->connection->client, B_CHUNK, 0);
    }
}

#define lodge_wants_body(r) (!(r)->header_only)

/*
 * No keep-alive after this response: before the headers, -1 makes 1.3 say
 * "Connection: close" (and then set 0); after, only 0 ends the connection.
 */
#define lodge_close_after(r, headers_sent) \
    ((r)->connection->keepalive = (headers_sent) ? 0 : -1)

/*
 * The same padding spoils 1.3's own error pages, most of them under 256
 * bytes. 1.3 chunks only for HTTP/1.1 clients, so a status answered here
 * is sent as to HTTP/1.0 (as 1.3 itself does for force-no-vary): the
 * status line stays, the page goes unchunked, and the connection closes
 * after it. (Turning keep-alive off is not enough: ap_die() turns it on.)
 */
#define lodge_error_status(r, status) \
    ((r)->proto_num = HTTP_VERSION(1, 0), (status))

/* 0, or -1 when the client is gone. */
static LODGE_INLINE int lodge_write_body(request_rec *r, const void *data,
                                         size_t n)
{
    if (n == 0) {
        return 0;   /* an empty chunk would end the response */
    }
    if (r->chunked && ap_rprintf(r, "%lx\r\n", (unsigned long)n) < 0) {
        return -1;
    }
    if (ap_rwrite(data, (int)n, r) < 0) {
        return -1;
    }
    return r->chunked && ap_rputs("\r\n", r) < 0 ? -1 : 0;
}

/*
 * 1.3 bounds client I/O with SIGALRM rather than socket timeouts. A soft
 * timeout only marks the connection aborted (no longjmp past our cleanup
 * of the lodged connection), which the request path checks anyway.
 */
#define lodge_client_timeout(r, what) ap_soft_timeout((char *)(what), (r))
#define lodge_client_timeout_reset(r) ap_reset_timeout(r)
#define lodge_client_timeout_end(r) ap_kill_timeout(r)

static LODGE_INLINE void lodge_abort_client(request_rec *r)
{
    r->connection->keepalive = -1;
    r->connection->aborted = 1;
    /* Nothing more reaches the client, not even a chunked trailer. */
    ap_bsetflag(r->connection->client, B_EOUT, 1);
}

/*
 * The tunnel (lodge_tunnel.c): after a 101 the client's connection carries
 * raw bytes both ways. 1.3 reads the request through the connection's
 * BUFF, which may already hold bytes the client sent after its headers:
 * those are taken first, and the socket is read only when poll() says so
 * (it is blocking, and a second read() would wait). Nothing goes through
 * ap_send_http_header, so no chunking is ever turned on for this response
 * and 1.3 writes nothing after it.
 */
typedef struct { int unused; } lodge_client_io;

static LODGE_INLINE int lodge_header_line13(void *fb, const char *name, const char *value)
{
    ap_bvputs((BUFF *)fb, name, ": ", value, "\r\n", NULL);
    return 1;
}

/* The 101 and the response's headers, flushed. 0, or -1 when the client is gone. */
static LODGE_INLINE int lodge_tunnel_open(request_rec *r, lodge_client_io *io)
{
    BUFF *fb = r->connection->client;

    (void)io;
    r->status_line = ap_pstrdup(r->pool, "101 Switching Protocols");
    ap_bvputs(fb, "HTTP/1.1 ", r->status_line, "\r\n", NULL);
    ap_table_do(lodge_header_line13, fb, r->headers_out, NULL);
    ap_bputs("\r\n", fb);
    r->sent_bodyct = 1;
    r->connection->keepalive = 0;
    return ap_bflush(fb) < 0 || r->connection->aborted ? -1 : 0;
}

/* What the client sent, without waiting: bytes; 0 at its end; -EAGAIN; -EIO. */
static LODGE_INLINE long lodge_tunnel_read(request_rec *r, lodge_client_io *io,
                                           char *buf, size_t n)
{
    BUFF *fb = r->connection->client;
    int got;

    (void)io;
    if (fb->incnt > 0) {
        /* Only what is buffered: asking for more would read() again. */
        if (n > (size_t)fb->incnt) {
            n = (size_t)fb->incnt;
        }
    }
    else {
        struct pollfd p;

        p.fd = ap_bfileno(fb, B_RD);
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) <= 0) {
            return -EAGAIN;
        }
    }
    got = ap_bread(fb, buf, (int)n);
    return got < 0 ? -EIO : (long)got;
}

/* n bytes to the client, flushed: 0, or -1 when it is gone. */
static LODGE_INLINE int lodge_tunnel_write(request_rec *r, lodge_client_io *io,
                                           const void *data, size_t n)
{
    BUFF *fb = r->connection->client;

    (void)io;
    if (ap_bwrite(fb, data, (int)n) != (int)n) {
        return -1;
    }
    return ap_bflush(fb) < 0 || r->connection->aborted ? -1 : 0;
}

/* Requests served at once: MaxClients, a process each. */
#define lodge_mpm_workers() ap_daemons_limit

/* 1.3 children are single-threaded. */
typedef int lodge_mutex_t;
#define lodge_mutex_create(mp, p) ((void)(p), *(mp) = NULL, 0)
#define lodge_mutex_lock(m) ((void)(m))
#define lodge_mutex_unlock(m) ((void)(m))

/*
 * Supervising lodged (lodge_daemon.c) from the parent process.
 *
 * 1.3 calls the module's init after reading the configuration: once in
 * the process the host started, before it detaches (ap_restart_time is
 * still 0 then), and again in the parent that runs the server, at start
 * and after every restart. Only the latter may own lodged, and only a
 * standalone server has a parent that waits for its children.
 */
#define lodge_in_server_parent() (ap_standalone && ap_restart_time != 0)

/*
 * Whether pconf goes because the parent exits rather than restarts: every
 * restart advances the generation before it clears pconf; an exit does not.
 * By then the error log is closed (plog goes first).
 */
#define lodge_generation() ((long)ap_my_generation)
#define lodge_parent_exiting(gen) ((long)ap_my_generation == (gen))

/*
 * 1.3 has no hook at the parent's exit; a stop reaches the module as
 * OC_REASON_RESTART from reclaim_child_processes(), logs still open.
 */
#define lodge_at_parent_exit(s, data, fn) \
    ((void)(s), (void)(data), (void)(fn))
#define lodge_at_parent_exit_kill(s, data, fn) \
    ((void)(s), (void)(data), (void)(fn))

/*
 * Memory that outlives a restart, during which the module itself is
 * unloaded and loaded again. 1.3 has no process-wide pool, so it is
 * malloc'd once per parent, and its address kept in the parent's
 * environment (the one place a reloaded module can find it again), with
 * the parent's pid: a copy inherited from elsewhere is not ours. lodged
 * is started without it (lodge_env_is_private).
 */
static LODGE_INLINE void *lodge_process_data(server_rec *s, const char *key,
                                             size_t size)
{
    const char *val = getenv(key);
    unsigned long long addr;
    long pid;
    char buf[64];
    void *data;

    (void)s;
    if (val != NULL && sscanf(val, "%ld:%llx", &pid, &addr) == 2
        && pid == (long)getpid() && addr != 0) {
        return (void *)(uintptr_t)addr;
    }
    data = calloc(1, size);
    if (data != NULL) {
        snprintf(buf, sizeof(buf), "%ld:%llx", (long)getpid(),
                 (unsigned long long)(uintptr_t)data);
        setenv(key, buf, 1);
    }
    return data;
}
#define lodge_env_is_private(entry, key) \
    (strncmp((entry), (key), strlen(key)) == 0 && (entry)[strlen(key)] == '=')

/* The parent watches a process of its own through the "other child" list. */
typedef struct { int pid; } lodge_proc_t;
typedef ap_wait_t lodge_wait_t;
#define LODGE_OC_DEATH OC_REASON_DEATH
#define LODGE_OC_RESTART OC_REASON_RESTART
#define LODGE_OC_UNREGISTER OC_REASON_UNREGISTER
#define LODGE_OC_LOST OC_REASON_LOST

/* 1.3 frees the entry with pconf but leaves it listed: unlist it first. */
static LODGE_INLINE void lodge_other_child_unlist13(void *data)
{
    ap_unregister_other_child(data);
}

static LODGE_INLINE void lodge_other_child_register(
    lodge_proc_t *proc, void (*fn)(int, void *, lodge_wait_t), void *data,
    apr_pool_t *p)
{
    ap_register_other_child(proc->pid, fn, data, -1);
    ap_register_cleanup(p, data, lodge_other_child_unlist13, ap_null_cleanup);
}

static LODGE_INLINE void lodge_other_child_unregister(void *data,
                                                      apr_pool_t *p)
{
    ap_kill_cleanup(p, data, lodge_other_child_unlist13);
    ap_unregister_other_child(data);
}

/* 1.3 hands over the status as waitpid() gave it. */
#define lodge_wait_status_is_raw(status) ((void)(status), 1)

#else
/* ------------------------------------------------------------ Apache 2.4 */

#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_network_io.h"
#include "apr_portable.h"
#include "apr_thread_proc.h"
#include "ap_mpm.h"
/* ap_response_code_string: 1.3 declares it in http_core.h. */
#include "mod_core.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#define LODGE_MODULE_DATA AP_MODULE_DECLARE_DATA
#define LODGE_INLINE APR_INLINE

APLOG_USE_MODULE(lodge);

/* strerror() is not safe in a threaded child; apr_strerror() is. */
static LODGE_INLINE const char *lodge_errstr(apr_pool_t *p, int err)
{
    char buf[128];

    return apr_pstrdup(p, apr_strerror(err, buf, sizeof(buf)));
}

/* The status argument stays 0: messages name the errno text themselves. */
#define lodge_rlog(level, r, ...) \
    ap_log_rerror(APLOG_MARK, (level), 0, (r), __VA_ARGS__)
#define lodge_slog(level, s, ...) \
    ap_log_error(APLOG_MARK, (level), 0, (s), __VA_ARGS__)

typedef apr_status_t lodge_cleanup_rv;
#define LODGE_CLEANUP_DONE return APR_SUCCESS
#define lodge_cleanup_register(p, data, fn) \
    apr_pool_cleanup_register((p), (data), (fn), apr_pool_cleanup_null)
#define lodge_cleanup_kill(p, data, fn) apr_pool_cleanup_kill((p), (data), (fn))

#define LODGE_TAKE1(name, fn, where, help) \
    AP_INIT_TAKE1(name, fn, NULL, where, help)
#define LODGE_TAKE2(name, fn, where, help) \
    AP_INIT_TAKE2(name, fn, NULL, where, help)
#define LODGE_TAKE12(name, fn, where, help) \
    AP_INIT_TAKE12(name, fn, NULL, where, help)
#define LODGE_FLAG(name, fn, where, help) \
    AP_INIT_FLAG(name, fn, NULL, where, help)
#define LODGE_RAW_ARGS(name, fn, where, help) \
    AP_INIT_RAW_ARGS(name, fn, NULL, where, help)
#define LODGE_CMD_END { NULL }

#define lodge_cmd_file(cmd) \
    ((cmd)->directive && (cmd)->directive->filename \
        ? (cmd)->directive->filename : "")

/* The directory walk asks modules for its stat()s (httpd 2.4.5 and later). */
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 20)
#define LODGE_HAS_DIRWALK_STAT 1
#endif

/* The walk asks modules to open its .htaccess files (httpd 2.4.7 and later). */
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 24)
#define LODGE_HAS_OPEN_HTACCESS 1
#endif

/* Whether the nearest <Directory...> around a line is a regex one. */
static LODGE_INLINE int lodge_cmd_in_regex_section(cmd_parms *cmd)
{
    const ap_directive_t *sec;

    for (sec = cmd->directive ? cmd->directive->parent : NULL; sec != NULL;
         sec = sec->parent) {
        if (ap_cstr_casecmpn(sec->directive, "<Directory", 10) == 0) {
            return ap_cstr_casecmp(sec->directive, "<DirectoryMatch") == 0
                || (sec->args != NULL && sec->args[0] == '~');
        }
    }
    return 0;
}

#define lodge_client_ip(r) ((r)->useragent_ip)
#define lodge_client_port(r) \
    ((unsigned)((r)->useragent_addr ? (r)->useragent_addr->port : 0))
#define lodge_user(r) ((r)->user)
/*
 * 2.4 runs authentication only where authorization asked for a user (a
 * Require that the anonymous request did not meet), so a user set is one
 * that was required; ap_some_authn_required() would re-run the access
 * checkers, which a user already set satisfies.
 */
#define lodge_authn_required(r) ((void)(r), 1)
#define lodge_auth_type(r) ((r)->ap_auth_type)
#define lodge_is_https(r) (strcmp(ap_http_scheme(r), "https") == 0)
#define lodge_scheme(r) ap_http_scheme(r)
#define lodge_server_software() ap_get_server_banner()
#define lodge_context_prefix(r) ap_context_prefix(r)
#define lodge_context_document_root(r) ap_context_document_root(r)
#define lodge_server_name(r) ap_get_server_name(r)
#define lodge_merge_slashes(r, path) ((void)(r), (path))
#define lodge_is_regular_file(r) ((r)->finfo.filetype == APR_REG)
#define lodge_set_content_type(r, type) ap_set_content_type((r), (type))

static LODGE_INLINE int lodge_client_fd(request_rec *r)
{
    apr_socket_t *sock = ap_get_conn_socket(r->connection);
    apr_os_sock_t fd;

    if (sock == NULL || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return -1;
    }
    return (int)fd;
}

/*
 * 2.4 sends the header block with the first output and drops the body of
 * a HEAD response itself, after its content-length filter has counted it
 * (so a HEAD says the length a GET would get).
 */
#define lodge_send_headers(r) ((void)(r))
#define lodge_wants_body(r) ((void)(r), 1)

/* No keep-alive after this response, whether or not its headers are out. */
#define lodge_close_after(r, headers_sent) \
    ((void)(headers_sent), (r)->connection->keepalive = AP_CONN_CLOSE)

#define lodge_error_status(r, status) ((void)(r), (status))

/* 0, or -1 when the client is gone; the chunk filter frames the body. */
#define lodge_write_body(r, data, n) \
    (ap_rwrite((data), (int)(n), (r)) < 0 ? -1 : 0)

/* 2.4 bounds client I/O with the socket timeout (Timeout). */
#define lodge_client_timeout(r, what) ((void)(r), (void)(what))
#define lodge_client_timeout_reset(r) ((void)(r))
#define lodge_client_timeout_end(r) ((void)(r))

static LODGE_INLINE void lodge_abort_client(request_rec *r)
{
    /*
     * The core output filter drops everything once aborted is set, the
     * last chunk included, and the connection is not kept alive: the
     * client sees a cut-off response, never a complete wrong one.
     */
    r->connection->keepalive = AP_CONN_CLOSE;
    r->connection->aborted = 1;
}

/*
 * The tunnel (lodge_tunnel.c), as mod_proxy's tunnelling does it: the 101
 * goes out as an interim response, through the connection's filters and
 * flushed; then the request's filter chains are the connection's own, so
 * no HTTP filter frames the bytes, and at the request's end neither a body
 * nor a last chunk follows. The client is read through the connection's
 * input filters (without waiting), not its socket: the core input filter
 * may already hold bytes the client sent after its headers.
 */
typedef struct { apr_bucket_brigade *bb; } lodge_client_io;

/* The 101 and the response's headers, flushed. 0, or -1 when the client is gone. */
static LODGE_INLINE int lodge_tunnel_open(request_rec *r, lodge_client_io *io)
{
    conn_rec *c = r->connection;

    r->status_line = ap_get_status_line(r->status);
    ap_send_interim_response(r, 1);
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
    /* A request's read timeout would cut a tunnel that is quiet for a while. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    r->sent_bodyct = 1;
    c->keepalive = AP_CONN_CLOSE;
    io->bb = apr_brigade_create(r->pool, c->bucket_alloc);
    return c->aborted ? -1 : 0;
}

/* What the client sent, without waiting: bytes; 0 at its end; -EAGAIN; -EIO. */
static LODGE_INLINE long lodge_tunnel_read(request_rec *r, lodge_client_io *io,
                                           char *buf, size_t n)
{
    apr_size_t len = n;
    apr_status_t rv;
    int eos;

    apr_brigade_cleanup(io->bb);
    rv = ap_get_brigade(r->connection->input_filters, io->bb,
                        AP_MODE_READBYTES, APR_NONBLOCK_READ, n);
    if (APR_STATUS_IS_EAGAIN(rv)) {
        return -EAGAIN;
    }
    /*
     * The core input filter says APR_EOF on the read after the one that
     * met the end of the socket (which comes back empty).
     */
    if (APR_STATUS_IS_EOF(rv)) {
        return 0;
    }
    if (rv != APR_SUCCESS) {
        return -EIO;
    }
    eos = !APR_BRIGADE_EMPTY(io->bb)
          && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(io->bb));
    rv = apr_brigade_flatten(io->bb, buf, &len);
    apr_brigade_cleanup(io->bb);
    if (rv != APR_SUCCESS) {
        return -EIO;
    }
    return len > 0 ? (long)len : eos ? 0 : -EAGAIN;
}

/* n bytes to the client, flushed: 0, or -1 when it is gone. */
static LODGE_INLINE int lodge_tunnel_write(request_rec *r, lodge_client_io *io,
                                           const void *data, size_t n)
{
    conn_rec *c = r->connection;
    apr_status_t rv;

    apr_brigade_cleanup(io->bb);
    APR_BRIGADE_INSERT_TAIL(io->bb, apr_bucket_transient_create(
                                        data, n, c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(io->bb, apr_bucket_flush_create(c->bucket_alloc));
    rv = ap_pass_brigade(c->output_filters, io->bb);
    apr_brigade_cleanup(io->bb);
    return rv == APR_SUCCESS && !c->aborted ? 0 : -1;
}

/*
 * Requests served at once: MaxRequestWorkers, as the MPM says it (its
 * children times their threads; prefork counts no threads), 0 if unknown.
 */
static LODGE_INLINE int lodge_mpm_workers(void)
{
    int daemons = 0, threads = 0;

    if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons) != APR_SUCCESS
        || daemons < 1) {
        return 0;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS
        || threads < 1) {
        threads = 1;
    }
    return daemons * threads;
}

/* The event and worker MPMs serve many requests per process at once. */
#if APR_HAS_THREADS
typedef apr_thread_mutex_t lodge_mutex_t;
#define lodge_mutex_create(mp, p) \
    apr_thread_mutex_create((mp), APR_THREAD_MUTEX_DEFAULT, (p))
#define lodge_mutex_lock(m) ((void)apr_thread_mutex_lock(m))
#define lodge_mutex_unlock(m) ((void)apr_thread_mutex_unlock(m))
#else
typedef int lodge_mutex_t;
#define lodge_mutex_create(mp, p) ((void)(p), *(mp) = NULL, 0)
#define lodge_mutex_lock(m) ((void)(m))
#define lodge_mutex_unlock(m) ((void)(m))
#endif

/*
 * Supervising lodged (lodge_daemon.c) from the parent process.
 *
 * post_config runs once in a preflight pass (which may be the process
 * that detaches and exits, or `-k stop` about to signal), then in the
 * parent that runs the server, at start and after every restart.
 */
#define lodge_in_server_parent() \
    (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)

/*
 * Whether pconf goes because the parent exits (a stop, or a restart that
 * failed) rather than restarts. By then the error log is closed (its pool
 * goes before pconf).
 */
#define lodge_generation() ((long)ap_state_query(AP_SQ_CONFIG_GEN))
#define lodge_parent_exiting(gen) \
    ((void)(gen), ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING)

/*
 * The parent's last moment with its logs open: a pre-cleanup of the
 * process pool runs before that pool's sub-pools (pconf, the error log's)
 * are destroyed. The function is in the module, so it is taken off again
 * before each restart unloads the module.
 */
#define lodge_at_parent_exit(s, data, fn) \
    apr_pool_pre_cleanup_register((s)->process->pool, (data), (fn))
#define lodge_at_parent_exit_kill(s, data, fn) \
    apr_pool_cleanup_kill((s)->process->pool, (data), (fn))

/*
 * Memory that outlives a restart, during which the module itself is
 * unloaded and loaded again: the process pool lives as long as the parent.
 */
static LODGE_INLINE void *lodge_process_data(server_rec *s, const char *key,
                                             size_t size)
{
    void *data = NULL;

    apr_pool_userdata_get(&data, key, s->process->pool);
    if (data == NULL) {
        data = apr_pcalloc(s->process->pool, size);
        apr_pool_userdata_set(data, key, apr_pool_cleanup_null,
                              s->process->pool);
    }
    return data;
}
#define lodge_env_is_private(entry, key) ((void)(entry), (void)(key), 0)

/* The parent watches a process of its own through the "other child" list. */
typedef apr_proc_t lodge_proc_t;
typedef int lodge_wait_t;
#define LODGE_OC_DEATH APR_OC_REASON_DEATH
#define LODGE_OC_RESTART APR_OC_REASON_RESTART
#define LODGE_OC_UNREGISTER APR_OC_REASON_UNREGISTER
#define LODGE_OC_LOST APR_OC_REASON_LOST

/* APR unlists the entry itself when p is cleared. */
#define lodge_other_child_register(proc, fn, data, p) \
    apr_proc_other_child_register((proc), (fn), (data), NULL, (p))
#define lodge_other_child_unregister(data, p) \
    ((void)(p), apr_proc_other_child_unregister(data))

/*
 * When the MPM reaps the child it passes the exit status, or the number
 * of the signal that ended it, without saying which (and logs the signal
 * itself unless it is TERM, HUP, USR1 or KILL); APR's own waitpid() while
 * the MPM stops its children passes the raw status. A raw exit status is
 * a multiple of 256, so anything above 255 is raw.
 */
#define lodge_wait_status_is_raw(status) ((status) > 255)

#endif /* LODGE_APACHE13 */

extern module LODGE_MODULE_DATA lodge_module;

#endif /* LODGE_COMPAT_H */
