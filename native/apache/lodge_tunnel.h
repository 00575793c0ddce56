/*
 * lodge_tunnel.h: WebSocket upgrades: which requests ask for one, and the
 * tunnel a 101 opens (internal).
 */
#ifndef LODGE_TUNNEL_H
#define LODGE_TUNNEL_H

#include "lodge_exchange.h"

/*
 * GET over HTTP/1.1 whose Upgrade names websocket and whose Connection
 * names upgrade (tokens, any case): flagged TUNNEL to the backend.
 */
int lodge_wants_tunnel(request_rec *r);

/*
 * A TUNNEL request's input ends with BODY_END however the exchange ends
 * (PROTOCOL.md), so the stream is in step for the next request; sent on c
 * once. 0, or -1 when it could not be sent.
 */
int lodge_end_input(lodge_exchange *x, lodge_conn *c);

/*
 * After the HEAD 101 to a TUNNEL request, on whichever stream carries the
 * exchange (lodged's connection, or a lent worker's socket): the 101 to
 * the client, then bytes both ways until either side ends or neither sends
 * for x->tunnel_idle seconds. The client's connection closes after; the
 * backend's stream is kept only if it ended cleanly. Returns OK, with how
 * it ended recorded (in step, or cut off with the worker's verdict).
 */
int lodge_tunnel_relay(lodge_exchange *x);

#endif /* LODGE_TUNNEL_H */
