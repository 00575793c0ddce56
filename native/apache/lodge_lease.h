/*
 * lodge_lease.h: a worker lent by lodged for one request (GRANT ... RELEASE).
 *
 * lodged picks the worker, sends it the request's first frames and lends
 * mod_lodge its socket; the rest of the body goes straight to the worker
 * and the response comes straight back, so neither is copied through
 * lodged. lodged stays the scheduler and the watchdog: mod_lodge hands the
 * worker back with a verdict (RELEASE), and lodged decides what follows.
 */
#ifndef LODGE_LEASE_H
#define LODGE_LEASE_H

#include "lodge_exchange.h"

/* GRANT: takes the socket that came with it. OK, or a status (recorded). */
int lodge_lease_begin(lodge_exchange *x, const unsigned char *payload,
                      size_t len);

/*
 * Hands the worker back (RELEASE with verdict; VERDICT for one that took the
 * request on the app's socket, on a connection taken for it) and closes its
 * socket; the connection to lodged goes back to the free list when clean.
 * For LODGE_RELEASE_LOST it first reads lodged's ERROR telling why the worker
 * went, logs it and returns its status; otherwise returns 0. Called once the
 * exchange is over (lodge_run.c).
 */
int lodge_lease_end(lodge_exchange *x, int verdict);

/*
 * The exchange stopped early while the worker's stream is still in step
 * (client gone, a response refused): ABORT unless the worker has finished,
 * what it still sends dropped up to its END or ERROR (5 s in all, 8 MiB at
 * most, however it trickles), then the worker handed back: DONE, or STUCK
 * past either bound.
 */
void lodge_lease_finish(lodge_exchange *x);

/* Not an errno: lodge_lease_fill's feeding failed, *result holds the answer. */
#define LODGE_FEED_ANSWERED (-100000L)

/*
 * More of the lent worker's stream into its buffer, feeding it the body
 * meanwhile (see lodge_conn_fill for the return values, and above).
 */
long lodge_lease_fill(lodge_exchange *x, int *result);

/*
 * A read from the lent worker failed with n (0: closed): records that it
 * goes back LOST, TIMEOUT or BROKEN, and returns the status to answer.
 */
int lodge_lease_failed(lodge_exchange *x, long n);

#endif /* LODGE_LEASE_H */
