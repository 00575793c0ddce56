/*
 * lodge_route.h: the apps' own sockets (ROUTE), and requests sent straight
 * to them.
 *
 * lodged makes a listening socket per app, on which the app's workers
 * accept. Once an app has a ready worker, lodged answers an APP flagged
 * ROUTE with the socket's path instead of serving the request; each Apache
 * process remembers it, keyed by the APP payload itself (byte for byte:
 * the same app, owner, settings and declaration), and from then on
 * connects there, one connection per request, without lodged. A missing
 * socket (the app was reaped or changed) forgets the route and asks
 * lodged again; a full listen queue asks lodged, which queues.
 */
#ifndef LODGE_ROUTE_H
#define LODGE_ROUTE_H

#include "lodge_exchange.h"

int lodge_route_child_init(apr_pool_t *pchild);

/*
 * The request straight to its app when a route is known: OK once a worker
 * took it (held as x->worker, its response read as a lent worker's), the
 * status to answer, or LODGE_AGAIN when lodged is to be asked.
 */
int lodge_route_try(lodge_exchange *x);

/*
 * lodged's ROUTE (pairs socket, timeout, queue): remembered, the exchange
 * with lodged in step (its connection goes back); LODGE_ROUTED
 * (lodge_route_try sends it there), or the status of a ROUTE that could not
 * be read.
 */
int lodge_route_take(lodge_exchange *x, const unsigned char *payload, size_t len);

#endif /* LODGE_ROUTE_H */
