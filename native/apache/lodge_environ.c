/*
 * lodge_environ.c: the APP and REQ frames, built from the request.
 *
 *   APP   the app: root, owner, kind and entry, its directives, the
 *         host's LodgeLimit caps, Apache's worker count, its LodgeEnv
 *         variables
 *   REQ   the CGI variables of PEP 3333, and the headers as HTTP_*
 */
#include "lodge_environ.h"
#include "lodge_walk.h"

/*
 * SCRIPT_NAME is the request's URI minus the part that names a place
 * below the app root: what is left of r->filename past the root, plus
 * r->path_info. Aliases and user directories come out right this way.
 */
void lodge_split_uri(request_rec *r, const lodge_dir_conf *d,
                     const char **script_name, const char **path_info)
{
    size_t n = lodge_root_len(d->root);
    const char *uri = lodge_merge_slashes(r, r->uri);
    const char *below = "";
    const char *rel;
    size_t ulen, rlen;

    if (r->filename != NULL && strncmp(r->filename, d->root, n) == 0) {
        below = r->filename + n;
    }
    rel = r->path_info && *r->path_info
          ? apr_pstrcat(r->pool, below, r->path_info, NULL) : below;
    rel = lodge_merge_slashes(r, rel);
    ulen = strlen(uri);
    rlen = strlen(rel);
    if ((rlen == 0 || rel[0] == '/') && rlen <= ulen
        && strcmp(uri + ulen - rlen, rel) == 0) {
        *script_name = apr_pstrmemdup(r->pool, uri, ulen - rlen);
        *path_info = rel;
    }
    else {
        /* A rewrite made the two disagree; the whole URI is the app's. */
        *script_name = "";
        *path_info = uri;
    }
}

/*
 * The status location's SCRIPT_NAME is the path of the <Location> that set
 * its handler, when the request's path is under it; PATH_INFO the rest.
 */
static void split_status(request_rec *r, const char *path,
                         const char **script_name, const char **path_info)
{
    size_t n = path != NULL ? strlen(path) : 0;

    while (n > 0 && path[n - 1] == '/') {
        n--;
    }
    if (n > 0 && path[0] == '/' && strncmp(r->uri, path, n) == 0
        && (r->uri[n] == '\0' || r->uri[n] == '/')) {
        *script_name = apr_pstrmemdup(r->pool, r->uri, n);
        *path_info = r->uri + n;
    }
    else {
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
    if (s->limit_concurrency > 0) lodge_pair_add_num(b, "limit.concurrency", s->limit_concurrency);
    if (s->limit_tenant_requests > 0) lodge_pair_add_num(b, "limit.tenant_requests", s->limit_tenant_requests);
    if (s->limit_tenant_processes > 0) lodge_pair_add_num(b, "limit.tenant_processes", s->limit_tenant_processes);
    if (s->limit_tenant_memory > 0) lodge_pair_add_num(b, "limit.tenant_memory", s->limit_tenant_memory);
}

/*
 * How many requests this Apache serves at once (all its children), for
 * lodged's default share per tenant. The same for every request of a
 * process: read once, at child start.
 */
static int apache_workers;

void lodge_environ_child_init(void)
{
    apache_workers = lodge_mpm_workers();
}

/* APP: in a fixed order, because lodged keys its pools by these bytes. */
int lodge_add_app(lodge_exchange *x)
{
    const lodge_dir_conf *d = x->dir;
    lodge_buf *b = &x->first;
    long long uid, gid;
    size_t at;
    int i;

    if (!lodge_walk_owner(x->r, d->root, &uid, &gid)) {
        struct stat st;

        if (stat(d->root, &st) != 0) {
            int e = errno;

            return lodge_fail(x->r, HTTP_INTERNAL_SERVER_ERROR,
                              LODGE_LOGNO(00003) "cannot stat app root %s: %s",
                              d->root, lodge_errstr(x->r->pool, e));
        }
        uid = (long long)st.st_uid;
        gid = (long long)st.st_gid;
    }
    at = lodge_frame_open(b, LODGE_FRAME_APP);
    lodge_pair_add_str(b, "root", d->root);
    lodge_pair_add_str(b, "kind", d->kind);
    lodge_pair_add_str(b, "entry", d->entry);
    lodge_pair_add_str(b, "callable", d->callable);
    lodge_pair_add_num(b, "uid", uid);
    lodge_pair_add_num(b, "gid", gid);
    lodge_pair_add_num(b, "timeout", or_zero(d->timeout));
    lodge_pair_add_num(b, "memory", or_zero(d->memory));
    lodge_pair_add_num(b, "processes", or_zero(d->processes));
    lodge_pair_add_num(b, "concurrency", or_zero(d->concurrency));
    lodge_pair_add_num(b, "cpu", or_zero(d->cpu));
    lodge_pair_add_num(b, "idle", or_zero(d->idle));
    add_host_limits(b, ap_get_module_config(x->r->server->module_config,
                                            &lodge_module));
    if (apache_workers > 0) {
        lodge_pair_add_num(b, "apache.workers", apache_workers);
    }
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

/* APP for the status location: lodged's own page, no app of a tenant's. */
int lodge_add_status_app(lodge_exchange *x)
{
    size_t at = lodge_frame_open(&x->first, LODGE_FRAME_APP);

    lodge_pair_add_str(&x->first, "kind", "status");
    lodge_frame_close(&x->first, at);
    return OK;
}

/*
 * APP for an app's dashboard: which app (its directory and the file that
 * declares it), nothing that runs. lodged checks the directory as it
 * would the app's, and that the file says LodgeDashboard itself.
 */
int lodge_add_dashboard_app(lodge_exchange *x)
{
    size_t at = lodge_frame_open(&x->first, LODGE_FRAME_APP);

    lodge_pair_add_str(&x->first, "kind", "dashboard");
    lodge_pair_add_str(&x->first, "root", x->dir->root);
    lodge_pair_add_str(&x->first, "config", x->dir->config);
    lodge_frame_close(&x->first, at);
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

/*
 * Credentials: Proxy-Authorization is for a proxy on the way, never the
 * app's. Authorization is the app's (its own login, a bearer token) unless
 * Apache itself checked it and set a user: then the password stays with
 * Apache and the app has REMOTE_USER.
 */
static int header_withheld(request_rec *r, const char *key)
{
    return ap_cstr_casecmp(key, "Proxy-Authorization") == 0
        || (ap_cstr_casecmp(key, "Authorization") == 0 && lodge_user(r) != NULL);
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
            || ap_cstr_casecmp(h[i].key, "Proxy") == 0
            || header_withheld(r, h[i].key)) {
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

/*
 * The names REQ sets from the request itself. Apache's environment table
 * (SetEnv, SetEnvIf, mod_rewrite's E=, mod_ssl, mod_http2, REDIRECT_*) goes
 * to the app as CGI hands it to a script, but never in place of these: a
 * line of .htaccess cannot make up REMOTE_USER for the dashboard, nor a
 * header (HTTP_*), which only the client sends, nor a wsgi.* key.
 */
static const char *const own_names[] = {
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "CONTEXT_DOCUMENT_ROOT",
    "CONTEXT_PREFIX", "DOCUMENT_ROOT", "GATEWAY_INTERFACE", "HTTPS",
    "PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_USER",
    "REQUEST_METHOD", "REQUEST_SCHEME", "REQUEST_URI", "SCRIPT_FILENAME",
    "SCRIPT_NAME", "SERVER_ADDR", "SERVER_ADMIN", "SERVER_NAME",
    "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SIGNATURE", "SERVER_SOFTWARE",
};

static int own_name(const char *key)
{
    size_t i;

    /* wsgi.* is the runtime's to set, as mod_wsgi sets it over Apache's table. */
    if (strncmp(key, "HTTP_", 5) == 0 || strncmp(key, "wsgi.", 5) == 0) {
        return 1;
    }
    for (i = 0; i < sizeof(own_names) / sizeof(own_names[0]); i++) {
        if (strcmp(key, own_names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void add_subprocess_env(lodge_buf *b, request_rec *r)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key != NULL && e[i].val != NULL && *e[i].key
            && !own_name(e[i].key)) {
            lodge_pair_add_str(b, e[i].key, e[i].val);
        }
    }
}

/* The app's file, for SCRIPT_FILENAME (the status page and dashboards have none). */
static const char *script_filename(const lodge_exchange *x)
{
    if (x->status || x->dashboard || x->dir->root == NULL || x->dir->entry == NULL) {
        return NULL;
    }
    return apr_pstrcat(x->r->pool, x->dir->root,
                       lodge_root_len(x->dir->root) > 0 ? "/" : "", x->dir->entry, NULL);
}

/* REQ: the CGI variables of PEP 3333, as PROTOCOL.md lists them. */
void lodge_add_req(lodge_exchange *x)
{
    request_rec *r = x->r;
    lodge_buf *b = &x->first;
    const char *script_name, *path_info, *v;
    size_t at;

    if (x->status) {
        split_status(r, x->dir->status_path, &script_name, &path_info);
    }
    else {
        lodge_split_uri(r, x->dir, &script_name, &path_info);
    }
    if (x->dashboard) {
        /* The dashboard's own path joins SCRIPT_NAME (lodge_dashboard.c matched it). */
        size_t n = strlen(x->dir->dashboard);

        script_name = apr_pstrcat(r->pool, script_name, x->dir->dashboard, NULL);
        path_info += n;
    }
    at = lodge_frame_open(b, LODGE_FRAME_REQ);
    add_subprocess_env(b, r);
    lodge_pair_add_str(b, "GATEWAY_INTERFACE", "CGI/1.1");
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
    lodge_pair_add_str(b, "SERVER_SOFTWARE", lodge_server_software());
    lodge_pair_add_str(b, "SERVER_SIGNATURE", ap_psignature("", r));
    lodge_pair_add_str(b, "SERVER_ADMIN", r->server->server_admin
                                          ? r->server->server_admin : "");
    lodge_pair_add_str(b, "SERVER_NAME", lodge_server_name(r));
    lodge_pair_add_str(b, "SERVER_ADDR", r->connection->local_ip);
    lodge_pair_add_num(b, "SERVER_PORT", (long long)ap_get_server_port(r));
    lodge_pair_add_str(b, "SERVER_PROTOCOL", r->protocol);
    lodge_pair_add_str(b, "REQUEST_SCHEME", lodge_scheme(r));
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
    lodge_pair_add_str(b, "CONTEXT_PREFIX", lodge_context_prefix(r));
    lodge_pair_add_str(b, "CONTEXT_DOCUMENT_ROOT", lodge_context_document_root(r));
    if ((v = script_filename(x)) != NULL) {
        lodge_pair_add_str(b, "SCRIPT_FILENAME", v);
    }
    add_headers(b, r);
    lodge_frame_close(b, at);
}
