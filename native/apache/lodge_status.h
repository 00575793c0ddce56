/*
 * lodge_status.h: the status location, `SetHandler lodge-status`, served
 * only where the server config set that handler (internal).
 */
#ifndef LODGE_STATUS_H
#define LODGE_STATUS_H

#include "lodge_compat.h"
#include "lodge_protocol.h"

#define LODGE_STATUS_HANDLER "lodge-status"

/* LODGE_STATUS_BODY_MAX, LODGE_STATUS_IDLE: lodge_protocol.h. */

/*
 * The handler: the request to lodged (APP kind=status) when the server
 * config set the handler; 404 and a log line when a tenant's .htaccess
 * (or anything but the server config's SetHandler) did.
 */
int lodge_status_handle(request_rec *r);

#endif /* LODGE_STATUS_H */
