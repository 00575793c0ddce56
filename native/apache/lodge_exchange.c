/*
 * lodge_exchange.c: what the steps of one exchange share (lodge_exchange.h):
 * the outcome a step records where the exchange ends, and the text of log
 * lines. Nothing here sends, reads, answers or lets go; lodge_run.c does,
 * once, from what was recorded.
 */
#include "lodge_exchange.h"

#include <stdarg.h>
#include <stdio.h>

/* Decimal text of a 64-bit count: APR's formatter has no %lld. */
const char *lodge_count_text(apr_pool_t *p, long long v)
{
    char digits[24];

    snprintf(digits, sizeof(digits), "%lld", v);
    return apr_pstrdup(p, digits);
}

/* Control characters would split or forge log lines. */
const char *lodge_loggable(apr_pool_t *p, const unsigned char *s, size_t n)
{
    char *out;
    size_t i;

    if (n > LODGE_LOG_MESSAGE_MAX) {
        n = LODGE_LOG_MESSAGE_MAX;
    }
    out = apr_pstrmemdup(p, (const char *)s, n);
    for (i = 0; i < n; i++) {
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
            out[i] = ' ';
        }
    }
    return out;
}

const char *lodge_source(const lodge_exchange *x)
{
    return x->worker != NULL ? "the app's worker" : "lodged";
}

size_t lodge_root_len(const char *root)
{
    /* An app at "/" would otherwise make every prefix test miss. */
    return strcmp(root, "/") == 0 ? 0 : strlen(root);
}

int lodge_fail(request_rec *r, int status, const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    lodge_rlog(APLOG_ERR, r, "%s", msg);
    return status;
}

/* ------------------------------------------------------------- outcome */

int lodge_record(lodge_exchange *x, int status, int level, int worker,
                 const char *reason)
{
    lodge_outcome *o = &x->outcome;

    o->lodged = LODGE_CLOSE;
    o->worker = worker;
    o->level = level;
    o->reason = reason == NULL ? NULL
              : apr_psprintf(x->r->pool, "%s (app %s)", reason, x->dir->root);
    o->cut = x->committed;
    return status;
}

int lodge_broken(lodge_exchange *x, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    status = lodge_record(x, status, APLOG_ERR, LODGE_RELEASE_BROKEN,
                          apr_pvsprintf(x->r->pool, fmt, ap));
    va_end(ap);
    return status;
}

int lodge_refused(lodge_exchange *x, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    status = lodge_record(x, status, APLOG_ERR, LODGE_FINISH,
                          apr_pvsprintf(x->r->pool, fmt, ap));
    va_end(ap);
    return status;
}

int lodge_client_gone(lodge_exchange *x, const char *when)
{
    (void)lodge_record(x, OK, APLOG_INFO, LODGE_FINISH,
                       apr_pstrcat(x->r->pool, LODGE_LOGNO(00002)
                                   "client went away ", when, NULL));
    x->outcome.cut = 1;
    return OK;
}

void lodge_in_step(lodge_exchange *x)
{
    x->outcome.lodged = LODGE_KEEP;
}
