/*
 * lodge_config.c: the tenant's directives (LodgeApp, LodgeEnv, the limits),
 * and the per-directory create/merge pair. The host's are in
 * lodge_host_config.c.
 *
 * A tenant's bad line comes back as an error string; Apache prefixes the
 * .htaccess path, logs it, and answers 500 for that directory only. So each
 * message names the directive, what it accepts, and what it got.
 */
#include "lodge_config.h"
#include "lodge_directive.h"
#include "lodge_protocol.h"

#include <stdlib.h>

/* The largest LodgeProcesses: a cap a host can raise lodged-side, not here. */
#define LODGE_PROCESSES_MAX 1000

/*
 * LodgeApp needs one directory to be the app's root; a <Location> or
 * <Files> path, or a regex section, is not one.
 */
static const char *app_context_error(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LOCATION | NOT_IN_FILES);

    if (err != NULL) {
        return err;
    }
    if (cmd->path == NULL || cmd->path[0] != '/') {
        return "LodgeApp belongs in an .htaccess file or a <Directory> "
               "section: the app lives in that directory";
    }
    if (lodge_cmd_in_regex_section(cmd)) {
        return "LodgeApp cannot be used in a <DirectoryMatch> or "
               "<Directory ~> section: the app needs one directory";
    }
    return NULL;
}

const char *lodge_set_app(cmd_parms *cmd, void *conf, const char *kind,
                          const char *file)
{
    lodge_dir_conf *d = conf;
    const char *err = app_context_error(cmd);
    const char *colon, *entry, *callable = "";
    int python;
    size_t n;
    char *root;

    if (err != NULL) {
        return err;
    }
    if (strcmp(kind, "wsgi") != 0 && strcmp(kind, "asgi") != 0
        && strcmp(kind, "node") != 0) {
        return apr_psprintf(cmd->pool,
                            "LodgeApp takes 'wsgi', 'asgi' or 'node', then "
                            "the app file (e.g. LodgeApp wsgi app.py), "
                            "got '%s'", kind);
    }
    /* Python apps name their callable after ':'; a Node app is its file. */
    python = strcmp(kind, "node") != 0;
    if (file == NULL) {
        return apr_psprintf(cmd->pool,
                            "LodgeApp %s needs the app file after it "
                            "(e.g. LodgeApp %s %s)",
                            kind, kind,
                            strcmp(kind, "wsgi") == 0 ? "app.py"
                            : python ? "main.py:app" : "server.js");
    }

    /* The last ':' splits off the callable, so the file name may hold one. */
    colon = strrchr(file, ':');
    if (colon != NULL) {
        entry = apr_pstrmemdup(cmd->pool, file, (size_t)(colon - file));
        callable = colon + 1;
        if (!python) {
            return apr_psprintf(cmd->pool,
                                "LodgeApp %s takes the app file alone, "
                                "without ':NAME', got '%s'", kind, file);
        }
        if (!lodge_is_name(callable, lodge_name_first, lodge_name_rest)) {
            return apr_psprintf(cmd->pool,
                                "LodgeApp: '%s' after ':' is not a Python "
                                "name (letters, digits, _; e.g. "
                                "LodgeApp wsgi app.py:application)", callable);
        }
    }
    else {
        entry = file;
    }
    if (!lodge_stays_inside(entry)) {
        return apr_psprintf(cmd->pool,
                            "LodgeApp: the app file must be a path inside "
                            "this directory, without '..' (e.g. app.py), "
                            "got '%s'", entry);
    }

    root = apr_pstrdup(cmd->pool, cmd->path);
    n = strlen(root);
    while (n > 1 && root[n - 1] == '/') {
        root[--n] = '\0';
    }

    d->root = root;
    d->kind = kind;
    d->entry = entry;
    d->callable = callable;
    d->config = lodge_cmd_file(cmd);
    return NULL;
}

const char *lodge_set_env(cmd_parms *cmd, void *conf, const char *name,
                          const char *value)
{
    lodge_dir_conf *d = conf;
    lodge_env *e;
    int i;

    if (!lodge_is_name(name, lodge_name_first, lodge_name_rest)) {
        return apr_psprintf(cmd->pool,
                            "LodgeEnv takes a variable name (letters, digits "
                            "and _, not starting with a digit), then its value "
                            "(e.g. LodgeEnv DATABASE_URL sqlite:///db.sqlite3), "
                            "got '%s'", name);
    }
    if (d->env == NULL) {
        d->env = apr_array_make(cmd->pool, 4, sizeof(lodge_env));
    }
    /* Said twice in one place: the later line wins, in the first one's slot. */
    e = (lodge_env *)d->env->elts;
    for (i = 0; i < d->env->nelts; i++) {
        if (strcmp(e[i].name, name) == 0) {
            e[i].value = value;
            return NULL;
        }
    }
    e = (lodge_env *)apr_array_push(d->env);
    e->name = name;
    e->value = value;
    return NULL;
}

const char *lodge_set_timeout(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_seconds_arg(cmd, arg, &((lodge_dir_conf *)conf)->timeout);
}

const char *lodge_set_cpu(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_seconds_arg(cmd, arg, &((lodge_dir_conf *)conf)->cpu);
}

const char *lodge_set_idle(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_seconds_arg(cmd, arg, &((lodge_dir_conf *)conf)->idle);
}

const char *lodge_set_memory(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_size_arg(cmd, arg, &((lodge_dir_conf *)conf)->memory);
}

const char *lodge_set_processes(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_count_arg(cmd, arg, LODGE_PROCESSES_MAX, "processes", 4,
                           &((lodge_dir_conf *)conf)->processes);
}

/*
 * Requests one worker holds at once: its lanes (PROTOCOL.md), of which a
 * worker has at most LANES_MAX. Taken for any kind of app, so that a
 * tenant switching an app from wsgi to asgi keeps the line; lodged uses
 * it for node and asgi apps only (a WSGI worker holds one request).
 */
const char *lodge_set_concurrency(cmd_parms *cmd, void *conf, const char *arg)
{
    return lodge_count_arg(cmd, arg, LODGE_LANES_MAX,
                           "requests in flight per worker", 10,
                           &((lodge_dir_conf *)conf)->concurrency);
}

/*
 * A path below the app's URL, "/" then a name or more: it is matched
 * against the request's path inside the app, so it cannot hold what a URL
 * path would need escaped, nor a '..' that the match would not resolve.
 */
const char *lodge_set_dashboard(cmd_parms *cmd, void *conf, const char *arg)
{
    lodge_dir_conf *d = conf;
    const char *p;
    char *path;
    size_t n;

    for (p = arg; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || strchr("/._-~", *p) != NULL)) {
            break;
        }
    }
    if (arg[0] != '/' || *p != '\0' || !lodge_stays_inside(arg + 1)) {
        return apr_psprintf(cmd->pool,
                            "LodgeDashboard takes a path below the app's URL, "
                            "starting with '/', of letters, digits and ._-~ "
                            "(e.g. LodgeDashboard /.lodge), got '%s'", arg);
    }
    path = apr_pstrdup(cmd->pool, arg);
    n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
    }
    if (n < 2) {
        return "LodgeDashboard needs a path below the app's URL, not the "
               "app itself (e.g. LodgeDashboard /.lodge)";
    }
    d->dashboard = path;
    d->dashboard_config = lodge_cmd_file(cmd);
    return NULL;
}

void *lodge_create_dir_conf(apr_pool_t *p, char *dir)
{
    lodge_dir_conf *d = apr_pcalloc(p, sizeof(*d));

    (void)dir;
    d->timeout = LODGE_UNSET;
    d->cpu = LODGE_UNSET;
    d->idle = LODGE_UNSET;
    d->processes = LODGE_UNSET;
    d->concurrency = LODGE_UNSET;
    d->memory = LODGE_UNSET;
    d->status = LODGE_UNSET;
    return d;
}

/* A name set further down replaces the one from above, in its own place. */
static apr_array_header_t *merge_env(apr_pool_t *p, apr_array_header_t *base,
                                     apr_array_header_t *over)
{
    apr_array_header_t *m;
    const lodge_env *b, *o;
    int i, j;

    if (base == NULL || base->nelts == 0) {
        return over;
    }
    if (over == NULL || over->nelts == 0) {
        return base;
    }
    m = apr_array_make(p, base->nelts + over->nelts, sizeof(lodge_env));
    b = (const lodge_env *)base->elts;
    o = (const lodge_env *)over->elts;
    for (i = 0; i < base->nelts; i++) {
        for (j = 0; j < over->nelts; j++) {
            if (strcmp(b[i].name, o[j].name) == 0) {
                break;
            }
        }
        if (j == over->nelts) {
            *(lodge_env *)apr_array_push(m) = b[i];
        }
    }
    for (j = 0; j < over->nelts; j++) {
        *(lodge_env *)apr_array_push(m) = o[j];
    }
    return m;
}


void *lodge_merge_dir_conf(apr_pool_t *p, void *basev, void *overv)
{
    const lodge_dir_conf *base = basev, *over = overv;
    lodge_dir_conf *m = apr_palloc(p, sizeof(*m));
    /* The LodgeApp fields come from one line, so they move together. */
    const lodge_dir_conf *app = over->root ? over : base;
    /* The SetHandler line's fields too, as core merges the handler itself. */
    const lodge_dir_conf *handler = over->status != LODGE_UNSET ? over : base;

    m->root = app->root;
    m->kind = app->kind;
    m->entry = app->entry;
    m->callable = app->callable;
    m->config = app->config;
    LODGE_MERGE(timeout);
    LODGE_MERGE(cpu);
    LODGE_MERGE(idle);
    LODGE_MERGE(processes);
    LODGE_MERGE(concurrency);
    LODGE_MERGE(memory);
    m->env = merge_env(p, base->env, over->env);
    m->dashboard = over->dashboard ? over->dashboard : base->dashboard;
    m->dashboard_config = over->dashboard ? over->dashboard_config
                                          : base->dashboard_config;
    m->status = handler->status;
    m->status_path = handler->status_path;
    m->handler_file = handler->handler_file;
    return m;
}
