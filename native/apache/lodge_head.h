/*
 * lodge_head.h: the app's status and headers, onto Apache (internal).
 */
#ifndef LODGE_HEAD_H
#define LODGE_HEAD_H

#include "lodge_exchange.h"

/*
 * LODGE_HEAD_MAX (lodge_protocol.h), the most bytes a HEAD frame may have,
 * is checked from the frame's length before any of it is read, and fits
 * the connection's buffer, so a HEAD is never copied out of it.
 */
#if LODGE_HEAD_MAX > LODGE_CONN_BUFSIZE
#error "a HEAD of LODGE_HEAD_MAX bytes must fit the connection's buffer"
#endif

/*
 * HEAD: u16 status, then header pairs. Status 200-599, or 101 to a TUNNEL
 * request (its Upgrade and Connection kept for the client); at most 100
 * headers of at most 8190 bytes each; RFC 9110 token names and field
 * values (no control character but HTAB; whitespace around a value
 * dropped); a numeric Content-Length; hop-by-hop headers, and those the
 * app's Connection header names, dropped. Sets x->bodyless. OK, or the
 * answer (the response refused).
 */
int lodge_apply_head(lodge_exchange *x, const unsigned char *p, size_t len);

#endif /* LODGE_HEAD_H */
