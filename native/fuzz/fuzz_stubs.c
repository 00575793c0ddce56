/*
 * fuzz_stubs.c: fakes for the few functions the fuzzed sources call that
 * live in the rest of mod_lodge or in httpd itself, so that lodge_frame.c,
 * lodge_head.c, lodge_directive.c and lodge_config.c link alone. Each fake
 * records what the real one would have done, for the harness to check; none
 * logs (a log line is not what is under test).
 */
#include "fuzz_stubs.h"

#include <stdarg.h>
#include <strings.h>

int fuzz_broken_calls;
int fuzz_refused_calls;

/* lodge_exchange.c: records the outcome (lodge_run.c answers from it); here: counts. */
int lodge_broken(lodge_exchange *x, int status, const char *fmt, ...)
{
    (void)x;
    (void)fmt;
    fuzz_broken_calls++;
    return status;
}

int lodge_refused(lodge_exchange *x, int status, const char *fmt, ...)
{
    (void)x;
    (void)fmt;
    fuzz_refused_calls++;
    return status;
}

const char *lodge_source(const lodge_exchange *x)
{
    (void)x;
    return "the fake worker";
}

/* httpd's protocol.c: the fields the real ones set, nothing else. */
AP_DECLARE(void) ap_set_content_length(request_rec *r, apr_off_t length)
{
    r->clength = length;
}

AP_DECLARE(void) ap_set_content_type(request_rec *r, const char *ct)
{
    r->content_type = ct;
}

/* httpd's config.c: every context is allowed; the harness fakes the rest. */
AP_DECLARE(const char *) ap_check_cmd_context(cmd_parms *cmd,
                                              unsigned forbidden)
{
    (void)cmd;
    (void)forbidden;
    return NULL;
}

/* httpd's util.c, for lodge_compat.h's section check. */
AP_DECLARE(int) ap_cstr_casecmp(const char *s1, const char *s2)
{
    return strcasecmp(s1, s2);
}

AP_DECLARE(int) ap_cstr_casecmpn(const char *s1, const char *s2, apr_size_t n)
{
    return strncasecmp(s1, s2, n);
}

/* One pool for the whole run, cleared after each input. */
apr_pool_t *fuzz_pool(void)
{
    static apr_pool_t *pool;

    if (pool == NULL) {
        apr_initialize();
        apr_pool_create(&pool, NULL);
    }
    else {
        apr_pool_clear(pool);
    }
    fuzz_broken_calls = 0;
    fuzz_refused_calls = 0;
    return pool;
}
