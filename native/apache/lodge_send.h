/*
 * lodge_send.h: the request, out to lodged and the worker it lends (internal).
 */
#ifndef LODGE_SEND_H
#define LODGE_SEND_H

#include "lodge_exchange.h"

/*
 * APP (flagged MAY_BORROW) REQ BODY_END for a request without a body; APP
 * (flagged BORROW) REQ for one with a body, which then goes to the worker
 * lodged lends. Into x->first; OK or the status to answer.
 */
int lodge_build_first(lodge_exchange *x);

/*
 * x->first, to lodged. OK also when the send failed (the connection is
 * then marked broken): lodged may have answered early.
 */
int lodge_send_request(lodge_exchange *x);

/*
 * The rest of the body, to the worker lodged lent (after GRANT). OK also
 * when a send failed (x->worker_broken): the worker may have answered
 * early, or died, which its socket then tells.
 */
int lodge_stream_body(lodge_exchange *x);

#endif /* LODGE_SEND_H */
