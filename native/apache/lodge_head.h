/*
 * lodge_head.h: the app's status and headers, onto Apache (internal).
 */
#ifndef LODGE_HEAD_H
#define LODGE_HEAD_H

#include "lodge_exchange.h"

/*
 * HEAD: u16 status, then header pairs. Status 200-599, RFC 9110 token
 * names, no CR/LF/NUL in values, a numeric Content-Length; hop-by-hop
 * headers dropped. OK, or the answer (the response refused).
 */
int lodge_apply_head(lodge_exchange *x, const unsigned char *p, size_t len);

#endif /* LODGE_HEAD_H */
