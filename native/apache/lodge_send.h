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
 * then marked broken): lodged may have answered early. 504 (recorded) when
 * lodged took nothing for its timeout.
 */
int lodge_send_request(lodge_exchange *x);

/*
 * One step of the body to the lent worker, without waiting on the worker:
 * the next piece is read from the client when the last one has gone (which
 * may wait on the client), then as much of it written as the socket takes.
 * OK, or the status to answer (the client failed; recorded). A failed write stops
 * the feeding (x->worker_broken): reading the worker's socket tells why.
 */
int lodge_feed_body(lodge_exchange *x);

/* Whether the whole body, BODY_END included, has gone to the worker. */
int lodge_body_sent(const lodge_exchange *x);

/*
 * The rest of the body, waiting on the worker as needed (after an early
 * END: the idle worker drops it). OK, or the status to answer (recorded:
 * the client failed, or the worker took nothing for its timeout).
 */
int lodge_stream_body(lodge_exchange *x);

#endif /* LODGE_SEND_H */
