/*
 * lodge_environ.h: the APP and REQ frames of a request (internal).
 */
#ifndef LODGE_ENVIRON_H
#define LODGE_ENVIRON_H

#include "lodge_exchange.h"

/* APP into x->first; OK, or the status to answer when the root is gone. */
int lodge_add_app(lodge_exchange *x);

/* APP for the status location (kind=status, nothing else); OK. */
int lodge_add_status_app(lodge_exchange *x);

/* APP for an app's dashboard (kind=dashboard, root, config); OK. */
int lodge_add_dashboard_app(lodge_exchange *x);

/* SCRIPT_NAME and PATH_INFO of a request to the app of d. */
void lodge_split_uri(request_rec *r, const lodge_dir_conf *d,
                     const char **script_name, const char **path_info);

/* Child start: what APP says of this Apache (its worker count). */
void lodge_environ_child_init(void);

/* REQ into x->first. */
void lodge_add_req(lodge_exchange *x);

#endif /* LODGE_ENVIRON_H */
