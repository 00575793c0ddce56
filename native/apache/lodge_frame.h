/*
 * lodge_frame.h: building and reading the frames of
 * sidecar/src/protocol/PROTOCOL.md. The codes, flags, verdicts and limits
 * are in lodge_protocol.h, generated from sidecar/src/protocol/protocol.json
 * with lodged's and the worker's copies.
 */
#ifndef LODGE_FRAME_H
#define LODGE_FRAME_H

#include "lodge_compat.h"
#include "lodge_protocol.h"

#include <stddef.h>

/* A frame header as read: code and payload length. */
typedef struct {
    int type;
    unsigned long length;
} lodge_frame_head;

/*
 * An output buffer in a request pool that frames are built in, so that a
 * request goes to lodged in as few writes as possible. A name or value too
 * long for its length field sets `failed` instead of writing a frame that
 * lodged would misread; the caller checks it once, before sending.
 */
typedef struct {
    apr_pool_t *pool;
    unsigned char *data;
    size_t len;
    size_t cap;
    int failed;
} lodge_buf;

/* One pair as decoded: pointers into the payload, not NUL-terminated. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} lodge_pair;

/* Walks the pairs of a payload; see lodge_pairs_next. */
typedef struct {
    const unsigned char *next;
    const unsigned char *end;
} lodge_pairs;

const char *lodge_frame_name(int type);

void lodge_frame_put_header(unsigned char *at, int type, size_t length);
void lodge_frame_set_flags(lodge_buf *b, size_t at, int flags);
int lodge_frame_get_header(const unsigned char *at, lodge_frame_head *head);

unsigned lodge_get_u16(const unsigned char *at);
void lodge_put_u16(unsigned char *at, unsigned v);

void lodge_buf_init(lodge_buf *b, apr_pool_t *p, size_t cap);
unsigned char *lodge_buf_extend(lodge_buf *b, size_t n);
size_t lodge_frame_open(lodge_buf *b, int type);
void lodge_frame_close(lodge_buf *b, size_t at);
void lodge_frame_add_empty(lodge_buf *b, int type);

void lodge_pair_add(lodge_buf *b, const char *name, size_t name_len,
                    const char *value, size_t value_len);
void lodge_pair_add_str(lodge_buf *b, const char *name, const char *value);
void lodge_pair_add_num(lodge_buf *b, const char *name, long long value);
char *lodge_pair_add_name_slot(lodge_buf *b, size_t name_len,
                               const char *value, size_t value_len);

void lodge_pairs_init(lodge_pairs *it, const unsigned char *payload,
                      size_t length);
int lodge_pairs_next(lodge_pairs *it, lodge_pair *pair);

#endif /* LODGE_FRAME_H */
