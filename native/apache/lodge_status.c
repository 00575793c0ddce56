/*
 * lodge_status.c: the status location. The host's page shows every
 * tenant's apps, so only the host may open it: `SetHandler lodge-status`
 * in the server config (a <Location>, <LocationMatch> or <Directory> of
 * the main server or a virtual host). A tenant's .htaccess may say the
 * same line (AllowOverride FileInfo allows SetHandler), or name the
 * handler another way (AddHandler, a rewrite's H flag); none of those
 * opens anything.
 *
 * How the source is known, the same on 1.3 and 2.4: mod_lodge also takes
 * the SetHandler directive, ahead of the module that owns it, notes in its
 * own per-directory config whether the line came from the server config,
 * and declines it, so that the owner (2.4's core, 1.3's mod_mime) then
 * acts on the line as ever. Both configs are merged the same way (the
 * nearest line wins, .htaccess under <Location>), so the note always
 * describes the line that set the handler.
 */
#include "lodge_status.h"
#include "lodge_config.h"
#include "lodge_exchange.h"

/*
 * Only the server config's sections carry ACCESS_CONF, and only its top
 * level RSRC_CONF; an .htaccess is read with the AllowOverride bits alone
 * (its <Files> and <If> keep them), on both versions.
 */
static int from_server_config(const cmd_parms *cmd)
{
    return (cmd->override & (ACCESS_CONF | RSRC_CONF)) != 0;
}

const char *lodge_note_handler(cmd_parms *cmd, void *conf, const char *arg)
{
    lodge_dir_conf *d = conf;
    int host = from_server_config(cmd);

    d->status = host && strcasecmp(arg, LODGE_STATUS_HANDLER) == 0;
    d->status_path = cmd->path;
    d->handler_file = host ? NULL : lodge_cmd_file(cmd);
    return DECLINE_CMD;
}

static int refused(request_rec *r, const lodge_dir_conf *d)
{
    if (d != NULL && d->handler_file != NULL && d->status != 1) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00063)
                   "SetHandler %s in %s refused for %s: only the server "
                   "configuration may open the status location; 404",
                   LODGE_STATUS_HANDLER, d->handler_file, r->uri);
    }
    else {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00064)
                   "handler %s for %s refused: no SetHandler %s of the "
                   "server configuration applies there; 404",
                   LODGE_STATUS_HANDLER, r->uri, LODGE_STATUS_HANDLER);
    }
    return lodge_error_status(r, HTTP_NOT_FOUND);
}

int lodge_status_handle(request_rec *r)
{
    const lodge_dir_conf *d;
    lodge_dir_conf *label;
    lodge_exchange *x;

    if (r->handler == NULL || strcasecmp(r->handler, LODGE_STATUS_HANDLER) != 0) {
        return DECLINED;
    }
    d = ap_get_module_config(r->per_dir_config, &lodge_module);
    if (d == NULL || d->status != 1) {
        return refused(r, d);
    }
    /*
     * A tenant's page could pull the host's in (SSI's include virtual) or
     * send its visitors there (ErrorDocument): the location answers only
     * requests made to it.
     */
    if (r->main != NULL || r->prev != NULL) {
        lodge_rlog(APLOG_ERR, r, LODGE_LOGNO(00073)
                   "%s to the status location %s refused: it answers only "
                   "requests made to it; 404",
                   r->main != NULL ? "a sub-request" : "an internal redirect",
                   r->uri);
        return lodge_error_status(r, HTTP_NOT_FOUND);
    }
    /* No tenant's settings apply; log lines name the location. */
    label = lodge_create_dir_conf(r->pool, NULL);
    label->root = LODGE_STATUS_HANDLER;
    label->kind = "status";
    label->status = 1;
    label->status_path = d->status_path;
    x = lodge_exchange_new(r, label);
    x->status = 1;
    x->tunnel_idle = LODGE_STATUS_IDLE;
    return lodge_run(x);
}
