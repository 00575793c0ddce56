/*
 * lodge_config.h: what the directives leave behind.
 *
 * Tenant directives (.htaccess) fill lodge_dir_conf, host directives fill
 * lodge_server_conf. Numbers start as LODGE_UNSET so that a merge can tell
 * "not said here" from any value a directive accepts.
 */
#ifndef LODGE_CONFIG_H
#define LODGE_CONFIG_H

#include "lodge_compat.h"

#define LODGE_UNSET (-1)

/* Where lodged listens unless the host says otherwise (LodgeSocket). */
#define LODGE_DEFAULT_SOCKET "/run/lodge/lodged.sock"

/*
 * What LodgeDaemon runs unless LodgeDaemonCommand says otherwise: build.sh
 * passes the node and the lodged of the tree the module was built from;
 * without them, the paths of the install the top-level README describes.
 */
#ifndef LODGE_DEFAULT_NODE
#define LODGE_DEFAULT_NODE "/usr/bin/node"
#endif
#ifndef LODGE_DEFAULT_LODGED
#define LODGE_DEFAULT_LODGED "/opt/lodge/dist/sidecar/src/main.js"
#endif

typedef struct {
    const char *name;
    const char *value;
} lodge_env;

typedef struct {
    /* From one LodgeApp line; root is NULL when no LodgeApp applies. */
    const char *root;       /* the directory of that line, no trailing slash */
    const char *kind;       /* "wsgi", "asgi" or "node" */
    const char *entry;      /* the app file, relative to root */
    const char *callable;   /* "" when not given */
    const char *config;     /* the file the line is in (the .htaccess) */

    int timeout;            /* LodgeTimeout, seconds */
    int cpu;                /* LodgeCPU, seconds */
    int idle;               /* LodgeIdle, seconds */
    int processes;          /* LodgeProcesses */
    int concurrency;        /* LodgeConcurrency: requests per worker */
    long long memory;       /* LodgeMemory, bytes */

    apr_array_header_t *env; /* of lodge_env, in first-said order; NULL: none */

    /* LodgeDashboard: its path below the app's URL, and the file it is in. */
    const char *dashboard;  /* "/.lodge", no trailing slash; NULL: none */
    const char *dashboard_config;

    /*
     * From the SetHandler line that applies (lodge_status.c): 1 when the
     * server config said SetHandler lodge-status, 0 for any other
     * SetHandler line (a tenant's included), LODGE_UNSET for none.
     */
    int status;
    const char *status_path;  /* the section that line is in, or NULL */
    const char *handler_file; /* a tenant's line: its .htaccess */
} lodge_dir_conf;

typedef struct {
    const char *socket;     /* LodgeSocket; NULL: LODGE_DEFAULT_SOCKET */
    int daemon;             /* LodgeDaemon: LODGE_UNSET, 0 or 1 */
    int walk_cache;         /* LodgeWalkCache: LODGE_UNSET (on), 0 or 1 */
    /* LodgeDaemonCommand: the program, then its arguments; NULL: the default */
    apr_array_header_t *daemon_command;
    /* LodgeRuntimes python|node PATH: the interpreter of that kind's apps, given
       to the lodged Apache starts; NULL: lodged's own setting */
    const char *runtime_python;
    const char *runtime_node;

    /* LodgeLimit: the host's caps, which lodged applies. */
    int limit_timeout;
    int limit_processes;
    int limit_cpu;
    int limit_tasks;
    int limit_idle;
    int limit_concurrency;
    long long limit_memory;
    /* LodgeLimit tenant-*: one tenant's share, all its apps together. */
    int limit_tenant_requests;
    int limit_tenant_processes;
    long long limit_tenant_memory;
} lodge_server_conf;

void *lodge_create_dir_conf(apr_pool_t *p, char *dir);
void *lodge_merge_dir_conf(apr_pool_t *p, void *base, void *over);
void *lodge_create_server_conf(apr_pool_t *p, server_rec *s);
void *lodge_merge_server_conf(apr_pool_t *p, void *base, void *over);

const char *lodge_set_app(cmd_parms *cmd, void *conf, const char *kind,
                          const char *file);
const char *lodge_set_env(cmd_parms *cmd, void *conf, const char *name,
                          const char *value);
const char *lodge_set_timeout(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_cpu(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_idle(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_memory(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_processes(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_concurrency(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_dashboard(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_note_handler(cmd_parms *cmd, void *conf, const char *arg);

const char *lodge_set_socket(cmd_parms *cmd, void *conf, const char *arg);
const char *lodge_set_limit(cmd_parms *cmd, void *conf, const char *what,
                            const char *max);
const char *lodge_set_daemon(cmd_parms *cmd, void *conf, int on);
const char *lodge_set_walk_cache(cmd_parms *cmd, void *conf, int on);
const char *lodge_set_daemon_command(cmd_parms *cmd, void *conf,
                                     const char *args);
const char *lodge_set_runtimes(cmd_parms *cmd, void *conf, const char *kind,
                               const char *path);

const char *lodge_socket_path(const lodge_server_conf *s);

/* How many of the folders a request's walk lstat()ed itself it remembers. */
#define LODGE_WALKED 4

/*
 * What mod_lodge keeps on one request, in its request_config: made on first
 * use, gone with the request.
 */
typedef struct {
    int hid_directory;      /* lodge_hide_directory took a directory's type */
    int walked_count;       /* the last LODGE_WALKED folders the walk saw: */
    const char *walked[LODGE_WALKED];     /* ...their paths, */
    long long walked_uid[LODGE_WALKED];   /* ...owners */
    long long walked_gid[LODGE_WALKED];   /* ...and groups */
} lodge_request_note;

static LODGE_INLINE lodge_request_note *lodge_note(request_rec *r, int make)
{
    lodge_request_note *n = ap_get_module_config(r->request_config,
                                                 &lodge_module);

    if (n == NULL && make) {
        n = apr_pcalloc(r->pool, sizeof(*n));
        ap_set_module_config(r->request_config, &lodge_module, n);
    }
    return n;
}

#endif /* LODGE_CONFIG_H */
