/*
 * lodge_request.h: deciding which requests an app answers, and carrying
 * each one to lodged and its response back.
 */
#ifndef LODGE_REQUEST_H
#define LODGE_REQUEST_H

#include "lodge_compat.h"

#define LODGE_HANDLER "lodge-app"

int lodge_claim(request_rec *r);
int lodge_handle(request_rec *r);

#endif /* LODGE_REQUEST_H */
