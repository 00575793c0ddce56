/*
 * lodge_host_config.c: the host's directives (LodgeSocket, LodgeLimit,
 * LodgeDaemon, LodgeDaemonCommand, LodgeRuntimes), and the per-server
 * create/merge pair. They belong in the server configuration, never in a
 * tenant's .htaccess.
 */
#include "lodge_config.h"
#include "lodge_directive.h"
#include "lodge_protocol.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static lodge_server_conf *server_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &lodge_module);
}

const char *lodge_set_socket(cmd_parms *cmd, void *conf, const char *arg)
{
    struct sockaddr_un sa;
    const char *path = ap_server_root_relative(cmd->pool, (char *)arg);

    (void)conf;
    if (path == NULL || *arg == '\0') {
        return apr_psprintf(cmd->pool,
                            "LodgeSocket takes the path of lodged's unix "
                            "socket, got '%s'", arg);
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return apr_psprintf(cmd->pool,
                            "LodgeSocket: a unix socket path holds at most %d "
                            "bytes, '%s' has %d",
                            (int)sizeof(sa.sun_path) - 1, path,
                            (int)strlen(path));
    }
    server_conf(cmd)->socket = path;
    return NULL;
}

const char *lodge_set_limit(cmd_parms *cmd, void *conf, const char *what,
                            const char *max)
{
    lodge_server_conf *s = server_conf(cmd);
    int *count = NULL;
    long long *size = NULL;
    int most = INT_MAX;
    int bad = 0;

    (void)conf;
    if (strcmp(what, "memory") == 0)             size = &s->limit_memory;
    else if (strcmp(what, "tenant-memory") == 0) size = &s->limit_tenant_memory;
    else if (strcmp(what, "timeout") == 0)       count = &s->limit_timeout;
    else if (strcmp(what, "processes") == 0)     count = &s->limit_processes;
    else if (strcmp(what, "cpu") == 0)           count = &s->limit_cpu;
    else if (strcmp(what, "tasks") == 0)         count = &s->limit_tasks;
    else if (strcmp(what, "idle") == 0)          count = &s->limit_idle;
    else if (strcmp(what, "concurrency") == 0) {
        /* No worker has more lanes than this: a higher cap is a typo. */
        count = &s->limit_concurrency;
        most = LODGE_LANES_MAX;
    }
    else if (strcmp(what, "tenant-requests") == 0)
        count = &s->limit_tenant_requests;
    else if (strcmp(what, "tenant-processes") == 0)
        count = &s->limit_tenant_processes;
    else {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit takes timeout, memory, processes, "
                            "cpu, tasks, idle or concurrency, then the "
                            "largest value a tenant may set (e.g. "
                            "LodgeLimit timeout 300); "
                            "or tenant-requests, tenant-processes or "
                            "tenant-memory, then one tenant's share of all "
                            "its apps together; got '%s'", what);
    }
    bad = size != NULL ? lodge_parse_size(max, size) != 0
                       : lodge_parse_count(max, most, count) != 0;
    if (bad && size != NULL) {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit %s takes a size in bytes, with "
                            "K, M or G after the number (e.g. LodgeLimit "
                            "%s 1G), got '%s'", what, what, max);
    }
    if (bad && most != INT_MAX) {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit %s takes a whole number from 1 to %d "
                            "(e.g. LodgeLimit %s 16), got '%s'",
                            what, most, what, max);
    }
    if (bad) {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit %s takes a whole number above 0 "
                            "(e.g. LodgeLimit %s 300), got '%s'",
                            what, what, max);
    }
    return NULL;
}

/* An on/off directive of the main server's alone (not a virtual host's). */
static const char *global_flag(cmd_parms *cmd, int *field, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err != NULL) {
        return err;
    }
    *field = on ? 1 : 0;
    return NULL;
}

const char *lodge_set_daemon(cmd_parms *cmd, void *conf, int on)
{
    (void)conf;
    return global_flag(cmd, &server_conf(cmd)->daemon, on);
}

const char *lodge_set_walk_cache(cmd_parms *cmd, void *conf, int on)
{
    (void)conf;
    return global_flag(cmd, &server_conf(cmd)->walk_cache, on);
}

const char *lodge_set_daemon_command(cmd_parms *cmd, void *conf,
                                     const char *args)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_array_header_t *argv;
    const char *program;
    char *word;

    (void)conf;
    if (err != NULL) {
        return err;
    }
    argv = apr_array_make(cmd->pool, 8, sizeof(const char *));
    while (*(word = ap_getword_conf(cmd->pool, &args)) != '\0') {
        *(const char **)apr_array_push(argv) = word;
    }
    if (argv->nelts == 0) {
        return "LodgeDaemonCommand takes the program that runs lodged, then "
               "its arguments (e.g. LodgeDaemonCommand /usr/bin/node "
               "/opt/lodge/dist/sidecar/src/main.js --config "
               "/etc/lodge/lodged.json)";
    }
    program = ap_server_root_relative(cmd->pool,
                                      ((char **)argv->elts)[0]);
    /* Said here, a typo shows in `apachectl configtest`, not in a 503. */
    if (program == NULL || access(program, X_OK) != 0) {
        return apr_psprintf(cmd->pool,
                            "LodgeDaemonCommand: '%s' is not a program "
                            "Apache can run (%s)",
                            ((char **)argv->elts)[0],
                            program ? lodge_errstr(cmd->pool, errno)
                                    : "bad path");
    }
    ((const char **)argv->elts)[0] = program;
    server_conf(cmd)->daemon_command = argv;
    return NULL;
}

/*
 * Which interpreter runs tenants' code is the host's: an absolute path to an
 * executable file, checked when the configuration is read so that a typo is
 * a configtest error, not every app's 502.
 */
const char *lodge_set_runtimes(cmd_parms *cmd, void *conf, const char *kind,
                               const char *path)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    struct stat st;
    const char **slot;

    (void)conf;
    if (err != NULL) {
        return err;
    }
    if (strcmp(kind, "python") == 0) {
        slot = &server_conf(cmd)->runtime_python;
    }
    else if (strcmp(kind, "node") == 0) {
        slot = &server_conf(cmd)->runtime_node;
    }
    else {
        return apr_psprintf(cmd->pool,
                            "LodgeRuntimes takes python or node, then the "
                            "interpreter (e.g. LodgeRuntimes node "
                            "/usr/bin/node), got '%s'", kind);
    }
    if (path[0] != '/') {
        return apr_psprintf(cmd->pool,
                            "LodgeRuntimes %s: the interpreter is an absolute "
                            "path, got '%s'", kind, path);
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)
        || access(path, X_OK) != 0) {
        return apr_psprintf(cmd->pool,
                            "LodgeRuntimes %s: '%s' is not an executable "
                            "file", kind, path);
    }
    *slot = path;
    return NULL;
}

void *lodge_create_server_conf(apr_pool_t *p, server_rec *s)
{
    lodge_server_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->daemon = LODGE_UNSET;
    c->walk_cache = LODGE_UNSET;
    c->limit_timeout = LODGE_UNSET;
    c->limit_processes = LODGE_UNSET;
    c->limit_cpu = LODGE_UNSET;
    c->limit_tasks = LODGE_UNSET;
    c->limit_idle = LODGE_UNSET;
    c->limit_concurrency = LODGE_UNSET;
    c->limit_memory = LODGE_UNSET;
    c->limit_tenant_requests = LODGE_UNSET;
    c->limit_tenant_processes = LODGE_UNSET;
    c->limit_tenant_memory = LODGE_UNSET;
    return c;
}

void *lodge_merge_server_conf(apr_pool_t *p, void *basev, void *overv)
{
    const lodge_server_conf *base = basev, *over = overv;
    lodge_server_conf *m = apr_palloc(p, sizeof(*m));

    m->socket = over->socket ? over->socket : base->socket;
    m->runtime_python = over->runtime_python ? over->runtime_python
                                             : base->runtime_python;
    m->runtime_node = over->runtime_node ? over->runtime_node
                                         : base->runtime_node;
    m->daemon_command = over->daemon_command ? over->daemon_command
                                             : base->daemon_command;
    LODGE_MERGE(daemon);
    LODGE_MERGE(walk_cache);
    LODGE_MERGE(limit_timeout);
    LODGE_MERGE(limit_processes);
    LODGE_MERGE(limit_cpu);
    LODGE_MERGE(limit_tasks);
    LODGE_MERGE(limit_idle);
    LODGE_MERGE(limit_concurrency);
    LODGE_MERGE(limit_memory);
    LODGE_MERGE(limit_tenant_requests);
    LODGE_MERGE(limit_tenant_processes);
    LODGE_MERGE(limit_tenant_memory);
    return m;
}

const char *lodge_socket_path(const lodge_server_conf *s)
{
    return s->socket ? s->socket : LODGE_DEFAULT_SOCKET;
}
