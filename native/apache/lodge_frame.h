/*
 * lodge_frame.h: the frame protocol of sidecar/src/protocol/PROTOCOL.md.
 *
 * The codes below must agree with sidecar/src/protocol/frames.ts;
 * test/protocol-codes.test.ts checks that they do.
 */
#ifndef LODGE_FRAME_H
#define LODGE_FRAME_H

#include "lodge_compat.h"

#include <stddef.h>

#define LODGE_FRAME_APP      0x01
#define LODGE_FRAME_REQ      0x02
#define LODGE_FRAME_BODY     0x03
#define LODGE_FRAME_BODY_END 0x04
#define LODGE_FRAME_ABORT    0x05
#define LODGE_FRAME_RELEASE  0x06
#define LODGE_FRAME_HEAD     0x10
#define LODGE_FRAME_DATA     0x11
#define LODGE_FRAME_END      0x12
#define LODGE_FRAME_ERROR    0x13
#define LODGE_FRAME_GRANT    0x14
#define LODGE_FRAME_ROUTE    0x15
#define LODGE_FRAME_ACCEPTED 0x16
#define LODGE_FRAME_READY    0x20
#define LODGE_FRAME_FAIL     0x21
#define LODGE_FRAME_START    0x22  /* lodged -> a new worker only */

/* APP flags: mod_lodge takes the worker's socket itself (GRANT). */
#define LODGE_APP_BORROW 0x01
/* APP flags: no body; lodged may lend the worker (GRANT) or carry the response. */
#define LODGE_APP_MAY_BORROW 0x02
/*
 * APP flags: a WebSocket upgrade; no BODY_END follows the REQ. A 101 from
 * the backend opens a tunnel: BODY frames of the client's bytes one way,
 * DATA the other, until either side ends (lodge_tunnel.c).
 */
#define LODGE_APP_TUNNEL 0x04

/* APP flags: mod_lodge can go to the app's own socket (ROUTE) from now on. */
#define LODGE_APP_ROUTE 0x08

/* RELEASE verdicts: how the borrowed worker is handed back. */
#define LODGE_RELEASE_DONE    0   /* its END or ERROR was read: idle again */
#define LODGE_RELEASE_TIMEOUT 1   /* no progress for the GRANT's timeout */
#define LODGE_RELEASE_BROKEN  2   /* it broke the frame protocol */
#define LODGE_RELEASE_LOST    3   /* its socket closed: lodged says why */
#define LODGE_RELEASE_STUCK   4   /* told ABORT, it did not finish in time */

/* RELEASE's payload: the verdict, then the u16 status answered (0: none). */
#define LODGE_RELEASE_PAYLOAD_SIZE 3

/* type, flags, two reserved bytes, then the payload length (big-endian). */
#define LODGE_FRAME_HEADER_SIZE 8

/* A receiver rejects any payload over this before buffering it. */
#define LODGE_FRAME_MAX (16UL * 1024 * 1024)

/* Senders keep BODY and DATA at or under this, so nothing large is held whole. */
#define LODGE_FRAME_CHUNK_MAX (256UL * 1024)

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
