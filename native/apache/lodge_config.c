/*
 * lodge_config.c: the directives' setters, and the create/merge pairs.
 *
 * A tenant's bad line comes back as an error string; Apache prefixes the
 * .htaccess path, logs it, and answers 500 for that directory only. So each
 * message names the directive, what it accepts, and what it got.
 */
#include "lodge_config.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

/* The largest LodgeProcesses: a cap a host can raise lodged-side, not here. */
#define LODGE_PROCESSES_MAX 1000

/* A year: a longer LodgeTimeout, LodgeCPU or LodgeIdle is a typo. */
#define LODGE_SECONDS_MAX (366 * 24 * 3600)

static const char *cmd_name(cmd_parms *cmd)
{
    return cmd->cmd->name;
}

/*
 * A whole number above 0 that fits an int, in decimal; the rest of the
 * module adds to these, so the bound keeps that sum in range.
 */
static int parse_count(const char *arg, int max, int *out)
{
    char *end;
    long v;

    if (*arg < '0' || *arg > '9') {
        return -1;
    }
    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || *end != '\0' || v < 1 || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Bytes, with an optional K, M or G (powers of 1024) after the number. */
static int parse_size(const char *arg, long long *out)
{
    char *end;
    long long v, unit = 1;

    if (*arg < '0' || *arg > '9') {
        return -1;
    }
    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || v < 1) {
        return -1;
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': unit = 1024LL; end++; break;
    case 'm': case 'M': unit = 1024LL * 1024; end++; break;
    case 'g': case 'G': unit = 1024LL * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (*end != '\0' || v > LLONG_MAX / unit) {
        return -1;
    }
    *out = v * unit;
    return 0;
}

static const char *seconds(cmd_parms *cmd, const char *arg, int *out)
{
    if (parse_count(arg, LODGE_SECONDS_MAX, out) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s takes a whole number of seconds from 1 to %d "
                            "(e.g. %s 30), got '%s'",
                            cmd_name(cmd), LODGE_SECONDS_MAX, cmd_name(cmd),
                            arg);
    }
    return NULL;
}

static const char *size(cmd_parms *cmd, const char *arg, long long *out)
{
    if (parse_size(arg, out) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s takes a size in bytes, with K, M or G after "
                            "the number (e.g. %s 256M), got '%s'",
                            cmd_name(cmd), cmd_name(cmd), arg);
    }
    return NULL;
}

static int is_name(const char *s, int (*first)(int), int (*rest)(int))
{
    if (!first((unsigned char)*s)) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!rest((unsigned char)*s)) {
            return 0;
        }
    }
    return 1;
}

static int name_first(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int name_rest(int c)
{
    return name_first(c) || (c >= '0' && c <= '9');
}

/* A relative path that stays below the app root: no '..' component. */
static int stays_inside(const char *path)
{
    const char *p = path;

    if (*p == '\0' || *p == '/') {
        return 0;
    }
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return 0;
        }
        p += n;
        while (*p == '/') {
            p++;
        }
    }
    return 1;
}

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
    size_t n;
    char *root;

    if (err != NULL) {
        return err;
    }
    if (strcmp(kind, "wsgi") != 0 && strcmp(kind, "node") != 0) {
        return apr_psprintf(cmd->pool,
                            "LodgeApp takes 'wsgi' or 'node', then the app "
                            "file (e.g. LodgeApp wsgi app.py), got '%s'", kind);
    }
    if (file == NULL) {
        return apr_psprintf(cmd->pool,
                            "LodgeApp %s needs the app file after it "
                            "(e.g. LodgeApp %s %s)",
                            kind, kind,
                            strcmp(kind, "wsgi") == 0 ? "app.py" : "server.js");
    }

    /* The last ':' splits off the callable, so the file name may hold one. */
    colon = strrchr(file, ':');
    if (colon != NULL) {
        entry = apr_pstrmemdup(cmd->pool, file, (size_t)(colon - file));
        callable = colon + 1;
        if (strcmp(kind, "wsgi") != 0) {
            return apr_psprintf(cmd->pool,
                                "LodgeApp %s takes the app file alone, "
                                "without ':NAME', got '%s'", kind, file);
        }
        if (!is_name(callable, name_first, name_rest)) {
            return apr_psprintf(cmd->pool,
                                "LodgeApp: '%s' after ':' is not a Python "
                                "name (letters, digits, _; e.g. "
                                "LodgeApp wsgi app.py:application)", callable);
        }
    }
    else {
        entry = file;
    }
    if (!stays_inside(entry)) {
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

    if (!is_name(name, name_first, name_rest)) {
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
    return seconds(cmd, arg, &((lodge_dir_conf *)conf)->timeout);
}

const char *lodge_set_cpu(cmd_parms *cmd, void *conf, const char *arg)
{
    return seconds(cmd, arg, &((lodge_dir_conf *)conf)->cpu);
}

const char *lodge_set_idle(cmd_parms *cmd, void *conf, const char *arg)
{
    return seconds(cmd, arg, &((lodge_dir_conf *)conf)->idle);
}

const char *lodge_set_memory(cmd_parms *cmd, void *conf, const char *arg)
{
    return size(cmd, arg, &((lodge_dir_conf *)conf)->memory);
}

const char *lodge_set_processes(cmd_parms *cmd, void *conf, const char *arg)
{
    if (parse_count(arg, LODGE_PROCESSES_MAX,
                    &((lodge_dir_conf *)conf)->processes) != 0) {
        return apr_psprintf(cmd->pool,
                            "LodgeProcesses takes a number of processes from "
                            "1 to %d (e.g. LodgeProcesses 4), got '%s'",
                            LODGE_PROCESSES_MAX, arg);
    }
    return NULL;
}

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
    int bad = 0;

    (void)conf;
    if (strcmp(what, "memory") == 0) {
        bad = parse_size(max, &s->limit_memory) != 0;
    }
    else {
        if (strcmp(what, "timeout") == 0)        count = &s->limit_timeout;
        else if (strcmp(what, "processes") == 0) count = &s->limit_processes;
        else if (strcmp(what, "cpu") == 0)       count = &s->limit_cpu;
        else if (strcmp(what, "tasks") == 0)     count = &s->limit_tasks;
        else if (strcmp(what, "idle") == 0)      count = &s->limit_idle;
        else {
            return apr_psprintf(cmd->pool,
                                "LodgeLimit takes timeout, memory, processes, "
                                "cpu, tasks or idle, then the largest value a "
                                "tenant may set (e.g. LodgeLimit timeout 300), "
                                "got '%s'", what);
        }
        bad = parse_count(max, INT_MAX, count) != 0;
    }
    if (bad && count == NULL) {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit memory takes a size in bytes, with "
                            "K, M or G after the number (e.g. LodgeLimit "
                            "memory 1G), got '%s'", max);
    }
    if (bad) {
        return apr_psprintf(cmd->pool,
                            "LodgeLimit %s takes a whole number above 0 "
                            "(e.g. LodgeLimit %s 300), got '%s'",
                            what, what, max);
    }
    return NULL;
}

const char *lodge_set_daemon(cmd_parms *cmd, void *conf, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)conf;
    if (err != NULL) {
        return err;
    }
    server_conf(cmd)->daemon = on ? 1 : 0;
    return NULL;
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

const char *lodge_set_runtimes(cmd_parms *cmd, void *conf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path;

    (void)conf;
    if (err != NULL) {
        return err;
    }
    path = ap_server_root_relative(cmd->pool, (char *)arg);
    if (path == NULL || *arg == '\0') {
        return apr_psprintf(cmd->pool,
                            "LodgeRuntimes takes the directory that holds "
                            "the Lodge runtimes, got '%s'", arg);
    }
    server_conf(cmd)->runtimes = path;
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
    d->memory = LODGE_UNSET;
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

#define MERGE(field) \
    m->field = over->field != LODGE_UNSET ? over->field : base->field

void *lodge_merge_dir_conf(apr_pool_t *p, void *basev, void *overv)
{
    const lodge_dir_conf *base = basev, *over = overv;
    lodge_dir_conf *m = apr_palloc(p, sizeof(*m));
    /* The LodgeApp fields come from one line, so they move together. */
    const lodge_dir_conf *app = over->root ? over : base;

    m->root = app->root;
    m->kind = app->kind;
    m->entry = app->entry;
    m->callable = app->callable;
    m->config = app->config;
    MERGE(timeout);
    MERGE(cpu);
    MERGE(idle);
    MERGE(processes);
    MERGE(memory);
    m->env = merge_env(p, base->env, over->env);
    return m;
}

void *lodge_create_server_conf(apr_pool_t *p, server_rec *s)
{
    lodge_server_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->daemon = LODGE_UNSET;
    c->limit_timeout = LODGE_UNSET;
    c->limit_processes = LODGE_UNSET;
    c->limit_cpu = LODGE_UNSET;
    c->limit_tasks = LODGE_UNSET;
    c->limit_idle = LODGE_UNSET;
    c->limit_memory = LODGE_UNSET;
    return c;
}

void *lodge_merge_server_conf(apr_pool_t *p, void *basev, void *overv)
{
    const lodge_server_conf *base = basev, *over = overv;
    lodge_server_conf *m = apr_palloc(p, sizeof(*m));

    m->socket = over->socket ? over->socket : base->socket;
    m->runtimes = over->runtimes ? over->runtimes : base->runtimes;
    m->daemon_command = over->daemon_command ? over->daemon_command
                                             : base->daemon_command;
    MERGE(daemon);
    MERGE(limit_timeout);
    MERGE(limit_processes);
    MERGE(limit_cpu);
    MERGE(limit_tasks);
    MERGE(limit_idle);
    MERGE(limit_memory);
    return m;
}

const char *lodge_socket_path(const lodge_server_conf *s)
{
    return s->socket ? s->socket : LODGE_DEFAULT_SOCKET;
}
