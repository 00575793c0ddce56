/*
 * lodge_response.h: lodged's answer, onto Apache (internal).
 */
#ifndef LODGE_RESPONSE_H
#define LODGE_RESPONSE_H

#include "lodge_exchange.h"

/*
 * HEAD DATA... END or ERROR, passed on to the client. Returns the
 * handler's value, or LODGE_AGAIN when the connection died before any
 * byte of the response.
 */
int lodge_read_response(lodge_exchange *x);

#endif /* LODGE_RESPONSE_H */
