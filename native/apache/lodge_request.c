/*
 * lodge_request.c: the handler: which requests an app answers.
 *
 *   claim     type_checker: a request under an app's directory is the app's,
 *             except an existing file in its static/ folder
 *   handle    the app's dashboard (lodge_dashboard.c), or the request to
 *             the app (lodge_run.c)
 */
#include "lodge_request.h"
#include "lodge_dashboard.h"
#include "lodge_exchange.h"

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
