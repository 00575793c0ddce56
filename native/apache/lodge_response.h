/*
 * lodge_response.h: lodged's answer, onto Apache (internal).
 */
#ifndef LODGE_RESPONSE_H
#define LODGE_RESPONSE_H

#include "lodge_exchange.h"

/*
 * HEAD DATA... END or ERROR, passed on to the client, from lodged or the
 * worker (a lent one, or one on the app's socket). Returns the handler's
 * value with how the exchange ended recorded in x->outcome; LODGE_ROUTED
 * after a ROUTE (recorded in step); or LODGE_AGAIN when lodged's connection
 * died before any byte of the response (nothing recorded).
 */
int lodge_read_response(lodge_exchange *x);

#endif /* LODGE_RESPONSE_H */
