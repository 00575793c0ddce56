/*
 * fuzz_stubs.h: what the harnesses share: the fakes' records and the pool.
 */
#ifndef FUZZ_STUBS_H
#define FUZZ_STUBS_H

#include "lodge_exchange.h"

#include <apr_general.h>
#include <stdint.h>
#include <stdlib.h>

/* How often the fake lodge_broken / lodge_refused were called this input. */
extern int fuzz_broken_calls;
extern int fuzz_refused_calls;

/* The pool for one input: created once, cleared on each call. */
apr_pool_t *fuzz_pool(void);

/* A failed property: abort, so libFuzzer keeps the input as a crash. */
#define FUZZ_CHECK(cond) \
    do { if (!(cond)) { fuzz_fail(#cond, __FILE__, __LINE__); } } while (0)

static inline void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fuzz property failed: %s at %s:%d\n", what, file, line);
    abort();
}

#endif /* FUZZ_STUBS_H */
