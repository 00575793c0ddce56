/*
 * lodge_dashboard.h: a tenant's own dashboard, `LodgeDashboard /.lodge` in
 * the .htaccess that holds its LodgeApp (internal).
 */
#ifndef LODGE_DASHBOARD_H
#define LODGE_DASHBOARD_H

#include "lodge_config.h"

/*
 * For a request the app claimed: DECLINED when it is not to the app's
 * dashboard; else the request to lodged (APP kind=dashboard) when Apache
 * authenticated it, or a 403 page saying what the .htaccess lacks.
 */
int lodge_dashboard_handle(request_rec *r, const lodge_dir_conf *d);

#endif /* LODGE_DASHBOARD_H */
