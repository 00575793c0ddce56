/*
 * lodge_conn.h: connections to lodged, kept open across requests.
 *
 * Each Apache child keeps a free list of connected unix sockets per
 * LodgeSocket path. A request takes one (or opens one), uses it for
 * exactly one exchange, and puts it back only after a clean END or
 * ERROR; on anything else it closes it, because the state of the stream
 * is then unknown.
 *
 * A worker's socket that lodged lends for one request (GRANT) is wrapped
 * the same way (lodge_conn_adopt), so the response is read from it by the
 * same code. It is lodged's non-blocking socket, so waits on it are poll().
 */
#ifndef LODGE_CONN_H
#define LODGE_CONN_H

#include "lodge_compat.h"

#include <stddef.h>

/*
 * Bytes read from lodged ahead of use. HEAD and ERROR payloads that do
 * not fit are read into the request pool; DATA passes through in pieces.
 */
#define LODGE_CONN_BUFSIZE (64 * 1024)

typedef struct lodge_conn lodge_conn;

struct lodge_conn {
    int fd;
    int reused;             /* taken from the free list, not freshly opened */
    int timeout;            /* seconds now set as SO_RCVTIMEO/SO_SNDTIMEO */
    int timeout_left;       /* a shorter rest of it is set (after a signal) */
    char *path;             /* which lodged: the LodgeSocket path */
    unsigned char *buf;     /* LODGE_CONN_BUFSIZE bytes */
    size_t pos;             /* first unread byte in buf */
    size_t end;             /* one past the last byte read into buf */
    int passed_fd;          /* a descriptor lodged sent along (GRANT), or -1 */
    int polled;             /* non-blocking socket: waits are poll()s */
    int awaiting;           /* polled: just sent to; the answer cannot be there yet */
    int no_fds;             /* an app's socket: no descriptor ever comes on it */
    long long deadline;     /* polled: no wait past it (lodge_now_ms()); 0: none */
    lodge_conn *next;       /* in the free list */
};

int lodge_conn_child_init(apr_pool_t *pchild);

int lodge_conn_take(const char *path, lodge_conn **out);
int lodge_conn_open(const char *path, lodge_conn **out);
int lodge_conn_open_within(const char *path, int seconds, lodge_conn **out);
int lodge_conn_adopt(int fd, int polled, lodge_conn **out);
int lodge_conn_open_app(const char *path, lodge_conn **out);
/* An idle connection to path from this child's free list, or NULL. */
lodge_conn *lodge_conn_take_idle(const char *path);
void lodge_conn_give_back(lodge_conn *c);
void lodge_conn_close(lodge_conn *c);

int lodge_conn_set_timeout(lodge_conn *c, int seconds);

/*
 * On a polled connection: from now on no wait, however much progress came
 * before it, ends later than seconds from now (the timeout above still
 * bounds each wait). For a peer that must finish within a time, whatever
 * it trickles.
 */
void lodge_conn_set_deadline(lodge_conn *c, int seconds);

/* Milliseconds of the monotonic clock. */
long long lodge_now_ms(void);
int lodge_conn_send(lodge_conn *c, const void *data, size_t n);
long lodge_conn_fill(lodge_conn *c, int wait);

#endif /* LODGE_CONN_H */
