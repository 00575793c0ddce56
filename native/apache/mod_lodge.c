/*
 * mod_lodge: tenants' Python and Node.js apps behind Apache, run by lodged.
 *
 * This file is the module record, the directive table and the hooks; the
 * work is in lodge_config.c (directives), lodge_request.c and lodge_run.c
 * (the request path, lodge_exchange.h), lodge_conn.c (connections to
 * lodged), lodge_frame.c (the protocol) and lodge_daemon.c (Apache running
 * lodged). lodge_compat.h hides what differs between Apache 1.3 and 2.4.
 *
 * Log numbers: LG00001..LG00087 are taken (LG00014 and LG00086 retired); the next free
 * one is LG00088.
 */
#include "lodge_compat.h"
#include "lodge_config.h"
#include "lodge_conn.h"
#include "lodge_daemon.h"
#include "lodge_environ.h"
#include "lodge_request.h"
#include "lodge_route.h"
#include "lodge_status.h"
#include "lodge_htaccess.h"
#include "lodge_walk.h"

static const command_rec lodge_cmds[] = {
    /* Tenant: .htaccess (AllowOverride FileInfo) or <Directory>. */
    LODGE_TAKE12("LodgeApp", lodge_set_app, OR_FILEINFO,
                 "'wsgi', 'asgi' or 'node', then the app file, relative to this "
                 "directory (e.g. LodgeApp wsgi app.py:application)"),
    LODGE_TAKE2("LodgeEnv", lodge_set_env, OR_FILEINFO,
                "an environment variable for the app: NAME VALUE"),
    LODGE_TAKE1("LodgeTimeout", lodge_set_timeout, OR_FILEINFO,
                "seconds a request may take"),
    LODGE_TAKE1("LodgeCPU", lodge_set_cpu, OR_FILEINFO,
                "CPU seconds a worker process may use"),
    LODGE_TAKE1("LodgeIdle", lodge_set_idle, OR_FILEINFO,
                "seconds without requests before the app's processes stop"),
    LODGE_TAKE1("LodgeMemory", lodge_set_memory, OR_FILEINFO,
                "memory per worker process: bytes, or with K, M or G"),
    LODGE_TAKE1("LodgeProcesses", lodge_set_processes, OR_FILEINFO,
                "the most worker processes the app may have (1-1000)"),
    LODGE_TAKE1("LodgeConcurrency", lodge_set_concurrency, OR_FILEINFO,
                "requests one worker of a node or asgi app serves at once "
                "(1-64)"),
    LODGE_TAKE1("LodgeDashboard", lodge_set_dashboard, OR_FILEINFO,
                "the path of the tenant's dashboard below the app's URL "
                "(e.g. /.lodge), served only behind Apache authentication "
                "set in the same .htaccess"),
    /*
     * Not Lodge's: noted (was it the server config's?) and declined, so
     * that the module owning it acts on it as ever (lodge_status.c).
     */
    LODGE_TAKE1("SetHandler", lodge_note_handler, OR_FILEINFO,
                "a handler name that overrides any other configured handler"),

    /* Host: server config and virtual hosts. */
    LODGE_TAKE1("LodgeSocket", lodge_set_socket, RSRC_CONF,
                "the unix socket lodged listens on "
                "(default " LODGE_DEFAULT_SOCKET ")"),
    LODGE_TAKE2("LodgeLimit", lodge_set_limit, RSRC_CONF,
                "timeout|memory|processes|cpu|tasks|idle|concurrency, then "
                "the most a tenant may set; or tenant-requests|"
                "tenant-processes|"
                "tenant-memory, then one tenant's share"),
    LODGE_FLAG("LodgeDaemon", lodge_set_daemon, RSRC_CONF,
               "on (the default): Apache starts lodged, and again if it "
               "dies; off: lodged runs on its own (systemd)"),
    LODGE_RAW_ARGS("LodgeDaemonCommand", lodge_set_daemon_command, RSRC_CONF,
                   "the program that runs lodged, then its arguments "
                   "(--socket LodgeSocket is added)"),
    LODGE_FLAG("LodgeWalkCache", lodge_set_walk_cache, RSRC_CONF,
               "on (the default): the directory walk's lstat of a directory "
               "only root can change is remembered for a second, and a "
               ".htaccess file's text for as long as its stat() is the same "
               "(Apache 2.4.7 and later); off: asked and read every time"),
    LODGE_TAKE2("LodgeRuntimes", lodge_set_runtimes, RSRC_CONF,
                "python or node, then the interpreter that runs that kind's "
                "apps (the host's choice: lodged gets it as --python/--node)"),
    LODGE_CMD_END
};

#if LODGE_APACHE13

static void lodge_init13(server_rec *s, pool *p)
{
    lodge_daemon_config(p, s);
}

static void lodge_child_init13(server_rec *s, pool *p)
{
    lodge_environ_child_init();
    if (lodge_conn_child_init(p) != 0) {
        lodge_slog(APLOG_ERR, s, LODGE_LOGNO(00030)
                   "cannot create the connection-list lock; connections "
                   "to lodged will not be kept open");
    }
    if (lodge_route_child_init(p) != 0) {
        lodge_slog(APLOG_ERR, s, LODGE_LOGNO(00081)
                   "cannot create the route-list lock; every request goes "
                   "through lodged");
    }
}

static const handler_rec lodge_handlers[] = {
    { LODGE_HANDLER, lodge_handle },
    { LODGE_STATUS_HANDLER, lodge_status_handle },
    { NULL }
};

/*
 * 1.3 has no hook order: a LoadModule'd module runs before the built-in
 * ones, so lodge_claim sees a request before mod_mime and mod_negotiation.
 * mod_dir is a content handler there, which the claim's handler displaces.
 */
module LODGE_MODULE_DATA lodge_module = {
    STANDARD_MODULE_STUFF,
    lodge_init13,               /* init */
    lodge_create_dir_conf,
    lodge_merge_dir_conf,
    lodge_create_server_conf,
    lodge_merge_server_conf,
    lodge_cmds,
    lodge_handlers,
    NULL,                       /* translate_handler */
    NULL,                       /* check_user_id */
    NULL,                       /* auth_checker */
    NULL,                       /* access_checker */
    lodge_claim,                /* type_checker */
    NULL,                       /* fixer_upper */
    NULL,                       /* logger */
    NULL,                       /* header_parser */
    lodge_child_init13,
    NULL,                       /* child_exit */
    NULL                        /* post_read_request */
};

#else /* Apache 2.4 */

static int lodge_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    lodge_daemon_config(pconf, s);
    return OK;
}

static void lodge_child_init(apr_pool_t *p, server_rec *s)
{
    lodge_environ_child_init();
    if (lodge_conn_child_init(p) != 0) {
        lodge_slog(APLOG_ERR, s, LODGE_LOGNO(00030)
                   "cannot create the connection-list lock; connections "
                   "to lodged will not be kept open");
    }
    if (lodge_route_child_init(p) != 0) {
        lodge_slog(APLOG_ERR, s, LODGE_LOGNO(00081)
                   "cannot create the route-list lock; every request goes "
                   "through lodged");
    }
}

/*
 * mod_dir's fixup, seeing a directory, would redirect "/sub" to "/sub/" and
 * then look for a DirectoryIndex file, serving index.html (or worse, an
 * index the host named) instead of the app. The app owns its directories,
 * so mod_dir is shown no directory while it runs (as Passenger does), and
 * the file type is put back right after.
 */
static int lodge_hide_directory(request_rec *r)
{
    if (r->handler != NULL && strcmp(r->handler, LODGE_HANDLER) == 0
        && r->finfo.filetype == APR_DIR) {
        r->finfo.filetype = APR_NOFILE;
        lodge_note(r, 1)->hid_directory = 1;
    }
    return DECLINED;
}

static int lodge_restore_directory(request_rec *r)
{
    lodge_request_note *n = lodge_note(r, 0);

    if (n != NULL && n->hid_directory) {
        r->finfo.filetype = APR_DIR;
        n->hid_directory = 0;
    }
    return DECLINED;
}

static void lodge_register_hooks(apr_pool_t *p)
{
    static const char * const mod_dir[] = { "mod_dir.c", NULL };

    (void)p;
    ap_hook_post_config(lodge_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(lodge_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_negotiation (FIRST) and mod_mime (MIDDLE): see lodge_claim. */
    ap_hook_type_checker(lodge_claim, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_fixups(lodge_hide_directory, NULL, mod_dir, APR_HOOK_LAST);
    ap_hook_fixups(lodge_restore_directory, mod_dir, NULL, APR_HOOK_LAST);
    ap_hook_handler(lodge_handle, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(lodge_status_handle, NULL, NULL, APR_HOOK_MIDDLE);
    lodge_walk_register();
    lodge_htaccess_register();
}

module LODGE_MODULE_DATA lodge_module = {
    STANDARD20_MODULE_STUFF,
    lodge_create_dir_conf,
    lodge_merge_dir_conf,
    lodge_create_server_conf,
    lodge_merge_server_conf,
    lodge_cmds,
    lodge_register_hooks,
    AP_MODULE_FLAG_NONE
};

#endif /* LODGE_APACHE13 */
