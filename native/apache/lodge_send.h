/*
 * lodge_send.h: the request, out to lodged (internal).
 */
#ifndef LODGE_SEND_H
#define LODGE_SEND_H

#include "lodge_exchange.h"

/*
 * APP REQ, then as much of the body as has come, then BODY_END if it all
 * has, into x->first; OK or the status to answer.
 */
int lodge_build_first(lodge_exchange *x);

/*
 * x->first, then the rest of the body. OK also when a send failed (the
 * connection is then marked broken): lodged may have answered early.
 */
int lodge_send_request(lodge_exchange *x);

#endif /* LODGE_SEND_H */
