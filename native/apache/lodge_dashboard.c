/*
 * lodge_dashboard.c: a tenant's dashboard. `LodgeDashboard /.lodge` in the
 * .htaccess that holds LodgeApp serves lodged's view of that tenant's apps
 * at that path below the app's URL, in place of the app.
 *
 * The tenant guards it with Apache's own auth in the same .htaccess. The
 * dashboard is served only when that auth ran for the request: a Require
 * asked for a user and an auth module set one. A LodgeDashboard with no
 * auth lines (or a Require that lets everyone in) gets a 403 page saying
 * so, never the dashboard: it shows the app's errors and log, and offers
 * a restart.
 *
 * lodged decides on its own what the dashboard shows: it checks the app
 * directory as it would the app's, and that its file says LodgeDashboard,
 * so a frame sent by anyone else who can reach its socket opens nothing
 * the tenant did not declare.
 */
#include "lodge_dashboard.h"
#include "lodge_environ.h"
#include "lodge_exchange.h"

#define LODGE_DASHBOARD_NO_AUTH \
    "The dashboard needs Apache authentication in this .htaccess " \
    "(AuthType, AuthUserFile, Require valid-user)."

/* Whether the request's path inside the app is the dashboard's, or below it. */
static int is_dashboard(request_rec *r, const lodge_dir_conf *d)
{
    const char *script_name, *path_info;
    size_t n = strlen(d->dashboard);

    lodge_split_uri(r, d, &script_name, &path_info);
    return strncmp(path_info, d->dashboard, n) == 0
        && (path_info[n] == '\0' || path_info[n] == '/');
}

static int authenticated(request_rec *r)
{
    return lodge_user(r) != NULL && lodge_auth_type(r) != NULL
        && lodge_authn_required(r);
}

int lodge_dashboard_handle(request_rec *r, const lodge_dir_conf *d)
{
    lodge_exchange *x;

    if (d->dashboard == NULL || !is_dashboard(r, d)) {
        return DECLINED;
    }
    /*
     * The line belongs beside the LodgeApp it shows: one in a sub-folder's
     * .htaccess would give that folder's owner (or its auth) the app's view.
     */
    if (d->dashboard_config == NULL || d->config == NULL
        || strcmp(d->dashboard_config, d->config) != 0) {
        lodge_rlog(APLOG_WARNING, r, LODGE_LOGNO(00074)
                   "LodgeDashboard in %s ignored for %s: it must be in the "
                   "file that says LodgeApp (%s)", d->dashboard_config,
                   r->uri, d->config);
        return DECLINED;
    }
    if (!authenticated(r)) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00075)
                   "dashboard %s of app %s refused: no Apache authentication "
                   "applies there (AuthType, AuthUserFile and Require "
                   "valid-user in %s); 403", r->uri, d->root, d->config);
        ap_custom_response(r, HTTP_FORBIDDEN, LODGE_DASHBOARD_NO_AUTH);
        return lodge_error_status(r, HTTP_FORBIDDEN);
    }
    if (r->prev != NULL) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00076)
                   "an internal redirect to the dashboard %s refused: it "
                   "answers only requests made to it; 404", r->uri);
        return lodge_error_status(r, HTTP_NOT_FOUND);
    }
    x = lodge_exchange_new(r, d);
    x->dashboard = 1;
    return lodge_run(x);
}
