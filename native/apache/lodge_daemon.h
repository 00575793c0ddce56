/*
 * lodge_daemon.h: Apache's parent process runs lodged (LodgeDaemon on).
 */
#ifndef LODGE_DAEMON_H
#define LODGE_DAEMON_H

#include "lodge_compat.h"

/*
 * Called each time the parent has read the configuration (2.4's
 * post_config, 1.3's init): starts lodged, adopts the one that kept
 * running across a graceful restart, or stops it when LodgeDaemon is off.
 */
void lodge_daemon_config(apr_pool_t *pconf, server_rec *s);

#endif /* LODGE_DAEMON_H */
