/*
 * lodge_conn.c: unix-socket connections to lodged and the per-child free
 * list that keeps them open between requests.
 *
 * The sockets stay blocking, bounded by SO_RCVTIMEO/SO_SNDTIMEO, so that a
 * read from lodged is one recv() rather than poll() plus recv(); a read
 * that must not wait (is more of the response already here?) passes
 * MSG_DONTWAIT. Errors come back as negative errno values.
 *
 * A lent worker socket shares its open file (and so O_NONBLOCK) with
 * lodged, which must not block on it; on that one every wait is a poll().
 */
#include "lodge_conn.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
/* Apache ignores SIGPIPE in its children; this only spares a syscall. */
#define MSG_NOSIGNAL 0
#endif

/*
 * A unix-socket connect only waits when lodged's listen backlog is full,
 * i.e. lodged has not accepted for a while. Past this the client is better
 * served by a 503 now than by a wait as long as Apache's Timeout.
 */
#define LODGE_CONNECT_TIMEOUT 3

/*
 * Idle connections kept per child. A child never uses more at once than
 * it has threads; the cap only stops a rare burst from pinning sockets
 * (and lodged's descriptors) for the rest of the child's life.
 */
#define LODGE_CONN_KEEP 256

static lodge_mutex_t *free_lock;
static lodge_conn *free_list;
static int free_count;
static int keeping;             /* 0 until child_init has a lock */

int lodge_conn_child_init(apr_pool_t *pchild)
{
    int rv = lodge_mutex_create(&free_lock, pchild);

    keeping = rv == 0;
    return rv;
}

static int set_timeout_ms(int fd, int opt, long long ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) != 0 ? -errno : 0;
}

static int set_timeouts(int fd, int seconds)
{
    int rv = set_timeout_ms(fd, SO_RCVTIMEO, seconds * 1000LL);

    return rv != 0 ? rv : set_timeout_ms(fd, SO_SNDTIMEO, seconds * 1000LL);
}

long long lodge_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * A signal ends a blocking call early, and calling again would start the
 * whole timeout over; so the call goes again with only what is left of
 * the first one's. Returns 0 to go again, or -ETIMEDOUT.
 */
static int after_signal(lodge_conn *c, int opt, long long started)
{
    long long left = started + c->timeout * 1000LL - lodge_now_ms();

    if (left <= 0) {
        return -ETIMEDOUT;
    }
    if (set_timeout_ms(c->fd, opt, left) != 0) {
        return -errno;
    }
    /* Not c->timeout any more: lodge_conn_set_timeout sets it afresh. */
    c->timeout_left = 1;
    return 0;
}

int lodge_conn_set_timeout(lodge_conn *c, int seconds)
{
    int rv;

    if (c->timeout == seconds && !c->timeout_left) {
        return 0;
    }
    if (c->polled) {
        c->timeout = seconds;
        return 0;
    }
    rv = set_timeouts(c->fd, seconds);
    if (rv == 0) {
        c->timeout = seconds;
        c->timeout_left = 0;
    }
    return rv;
}

void lodge_conn_set_deadline(lodge_conn *c, int seconds)
{
    c->deadline = lodge_now_ms() + seconds * 1000LL;
}

/*
 * Where socket() takes the flags, a non-blocking one costs no fcntl() pair
 * (an app's socket is connected afresh for every request).
 */
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
#define LODGE_SOCKET_FLAGS 1
#endif

/* A unix stream socket, close-on-exec (CGI children and piped loggers must
 * not inherit a lodged stream), non-blocking when asked. */
static int new_socket(int nonblocking)
{
#ifdef LODGE_SOCKET_FLAGS
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC
                  | (nonblocking ? SOCK_NONBLOCK : 0), 0);
#else
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0
                    || (nonblocking && fcntl(fd, F_SETFL,
                                             fcntl(fd, F_GETFL) | O_NONBLOCK) != 0))) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
#endif
}

/* One block: it outlives every request pool, and is freed as one. */
static lodge_conn *wrap(int fd, const char *path, size_t n)
{
    lodge_conn *c = malloc(sizeof(*c) + LODGE_CONN_BUFSIZE + n + 1);

    if (c == NULL) {
        return NULL;
    }
    c->fd = fd;
    c->reused = 0;
    c->timeout = 0;
    c->timeout_left = 0;
    c->buf = (unsigned char *)(c + 1);
    c->path = (char *)c->buf + LODGE_CONN_BUFSIZE;
    memcpy(c->path, path, n + 1);
    c->pos = 0;
    c->end = 0;
    c->passed_fd = -1;
    c->polled = 0;
    c->awaiting = 0;
    c->no_fds = 0;
    c->deadline = 0;
    c->next = NULL;
    return c;
}

/*
 * A unix socket connected to path: blocking with LODGE_CONNECT_TIMEOUT
 * (lodged's socket: it may be restarting), or non-blocking (an app's own
 * socket: a listen queue that is full, or no socket there because the
 * app was reaped or changed, answers at once instead of holding the
 * Apache child). The descriptor, or a negative errno.
 */
static int connect_to(const char *path, int nonblocking)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);
    int fd, rv;

    if (n >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    fd = new_socket(nonblocking);
    if (fd < 0) {
        return -errno;
    }
    /* On Linux SO_SNDTIMEO also bounds a unix-socket connect. */
    rv = nonblocking ? 0 : set_timeouts(fd, LODGE_CONNECT_TIMEOUT);
    if (rv != 0) {
        close(fd);
        return rv;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n + 1);
    do {
        rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rv != 0 && errno == EINTR);
    if (rv != 0) {
        rv = (!nonblocking && (errno == EAGAIN || errno == EWOULDBLOCK))
             ? -ETIMEDOUT : -errno;
        close(fd);
        return rv;
    }
    return fd;
}

int lodge_conn_open(const char *path, lodge_conn **out)
{
    lodge_conn *c;
    int fd = connect_to(path, 0);

    if (fd < 0) {
        return fd;
    }
    c = wrap(fd, path, strlen(path));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->timeout = LODGE_CONNECT_TIMEOUT;
    *out = c;
    return 0;
}

/*
 * Between two tries while lodged's socket refuses: short beside lodged's own
 * start (Node's boot alone takes hundreds of ms), so a request waits little
 * past it; long enough that the Apache threads waiting for it cost nothing.
 */
#define LODGE_REOPEN_EVERY_MS 50

/*
 * A lodged that starts listens on a socket of its owner's alone, and opens it
 * to Apache's group a moment later (listener.ts): tries that meet -EACCES
 * go on this long only, so that a socket Apache may never open is still
 * answered at once, or nearly.
 */
#define LODGE_REOPEN_DENIED_MS 500

/*
 * As lodge_conn_open, trying again while nobody listens on path
 * (-ECONNREFUSED: the lodged that made it is gone; -ENOENT: the next one has
 * not made it yet; -EACCES, briefly: it has not opened it to us yet), for at
 * most seconds. What the last try returned.
 */
int lodge_conn_open_within(const char *path, int seconds, lodge_conn **out)
{
    long long until = lodge_now_ms() + seconds * 1000LL;
    int denied = 0, rv;

    while ((rv = lodge_conn_open(path, out)) == -ECONNREFUSED
           || rv == -ENOENT
           || (rv == -EACCES
               && (denied += LODGE_REOPEN_EVERY_MS) <= LODGE_REOPEN_DENIED_MS)) {
        if (lodge_now_ms() + LODGE_REOPEN_EVERY_MS > until) {
            break;
        }
        usleep(LODGE_REOPEN_EVERY_MS * 1000);
    }
    return rv;
}

/*
 * A connection to an app's own socket (ROUTE): polled, as a lent worker's; named
 * for its path, so that one kept for the next request goes back on the free list
 * under it.
 */
int lodge_conn_open_app(const char *path, lodge_conn **out)
{
    int fd = connect_to(path, 1);
    lodge_conn *c;

    if (fd < 0) {
        return fd;
    }
    c = wrap(fd, path, strlen(path));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->polled = 1;
    c->no_fds = 1;
    *out = c;
    return 0;
}

int lodge_conn_adopt(int fd, int polled, lodge_conn **out)
{
    lodge_conn *c = wrap(fd, "", 0);

    if (c == NULL) {
        return -ENOMEM;
    }
    c->polled = polled;
    *out = c;
    return 0;
}

lodge_conn *lodge_conn_take_idle(const char *path)
{
    lodge_conn *c = NULL, **link;

    if (!keeping) {
        return NULL;
    }
    lodge_mutex_lock(free_lock);
    for (link = &free_list; *link != NULL; link = &(*link)->next) {
        if (strcmp((*link)->path, path) == 0) {
            c = *link;
            *link = c->next;
            free_count--;
            break;
        }
    }
    lodge_mutex_unlock(free_lock);
    if (c != NULL) {
        c->next = NULL;
        c->reused = 1;
    }
    return c;
}

/* An idle connection to path if this child has one, else a new one. */
int lodge_conn_take(const char *path, lodge_conn **out)
{
    lodge_conn *c = lodge_conn_take_idle(path);

    if (c == NULL) {
        return lodge_conn_open(path, out);
    }
    *out = c;
    return 0;
}

void lodge_conn_close(lodge_conn *c)
{
    if (c->passed_fd >= 0) {
        close(c->passed_fd);
    }
    close(c->fd);
    free(c);
}

/* Only after a clean END or ERROR, with nothing left unread. */
void lodge_conn_give_back(lodge_conn *c)
{
    c->pos = 0;
    c->end = 0;
    c->awaiting = 0;
    c->deadline = 0;
    if (c->passed_fd >= 0) {
        close(c->passed_fd);
        c->passed_fd = -1;
    }
    if (keeping) {
        lodge_mutex_lock(free_lock);
        if (free_count < LODGE_CONN_KEEP) {
            c->next = free_list;
            free_list = c;
            free_count++;
            c = NULL;
        }
        lodge_mutex_unlock(free_lock);
    }
    if (c != NULL) {
        lodge_conn_close(c);
    }
}

/*
 * On a polled connection: waits until the socket is ready for events, at
 * most what is left of the timeout since started. 0, -ETIMEDOUT or -errno.
 */
static int wait_ready(lodge_conn *c, short events, long long started)
{
    for (;;) {
        struct pollfd p;
        long long now = lodge_now_ms();
        long long left = started + c->timeout * 1000LL - now;
        int n;

        if (c->deadline != 0 && c->deadline - now < left) {
            left = c->deadline - now;
        }

        if (left <= 0) {
            return -ETIMEDOUT;
        }
        p.fd = c->fd;
        p.events = events;
        p.revents = 0;
        n = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
        if (n > 0) {
            /* An error or hang-up is for the next call to report. */
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

/* Sends all n bytes: 0, -ETIMEDOUT past the timeout, or -errno. */
int lodge_conn_send(lodge_conn *c, const void *data, size_t n)
{
    const char *p = data;
    long long started = lodge_now_ms();
    int flags = MSG_NOSIGNAL | (c->polled ? MSG_DONTWAIT : 0);

    while (n > 0) {
        ssize_t w = send(c->fd, p, n, flags);

        if (w < 0) {
            int rv;

            if (c->polled && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if ((rv = wait_ready(c, POLLOUT, started)) != 0) {
                    return rv;
                }
                continue;
            }
            if (errno == EINTR) {
                if (!c->polled
                    && (rv = after_signal(c, SO_SNDTIMEO, started)) != 0) {
                    return rv;
                }
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK)
                   ? -ETIMEDOUT : -errno;
        }
        p += w;
        n -= (size_t)w;
        /* A worker's answer takes at least a wake-up: the next wait polls first. */
        c->awaiting = c->polled;
        started = lodge_now_ms();
        if (c->timeout_left) {
            /* On failure timeout_left stays set, and the next call retries. */
            (void)lodge_conn_set_timeout(c, c->timeout);
        }
    }
    return 0;
}

/*
 * One recvmsg() into the buffer, keeping a descriptor that came along
 * (only GRANT carries one; a second before the first is taken is closed).
 */
static ssize_t receive(lodge_conn *c, int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *cm;
    ssize_t n;

    if (c->no_fds) {
        return recv(c->fd, c->buf + c->end, LODGE_CONN_BUFSIZE - c->end, flags);
    }
    iov.iov_base = c->buf + c->end;
    iov.iov_len = LODGE_CONN_BUFSIZE - c->end;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
#ifdef MSG_CMSG_CLOEXEC
    flags |= MSG_CMSG_CLOEXEC;
#endif
    n = recvmsg(c->fd, &msg, flags);
    if (n < 0) {
        return n;
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        int fd;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS
            || cm->cmsg_len < CMSG_LEN(sizeof(int))) {
            continue;
        }
        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
#ifndef MSG_CMSG_CLOEXEC
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
        if (c->passed_fd >= 0) {
            close(fd);
        }
        else {
            c->passed_fd = fd;
        }
    }
    return n;
}

/*
 * Reads more of the stream behind what is buffered (moving the unread
 * rest to the front first). Returns the number of bytes read; 0 at end of
 * stream; -EAGAIN when !wait and nothing is there yet; -ETIMEDOUT when
 * wait and nothing came within the timeout; or -errno.
 */
long lodge_conn_fill(lodge_conn *c, int wait)
{
    long long started;
    ssize_t n;
    int rv, e;

    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->end - c->pos);
        c->end -= c->pos;
        c->pos = 0;
    }
    if (c->end == LODGE_CONN_BUFSIZE) {
        return -ENOBUFS;
    }
    started = wait ? lodge_now_ms() : 0;
    if (c->awaiting) {
        /*
         * Right after the request went out nothing is there yet: a read now
         * would only fail with EAGAIN before the poll it then needs.
         */
        c->awaiting = 0;
        if (wait && (rv = wait_ready(c, POLLIN, started)) != 0) {
            return rv;
        }
    }
    for (;;) {
        n = receive(c, (wait && !c->polled) ? 0 : MSG_DONTWAIT);
        if (n >= 0) {
            break;
        }
        if (wait && c->polled && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rv = wait_ready(c, POLLIN, started)) != 0) {
                return rv;
            }
            continue;
        }
        if (errno != EINTR) {
            break;
        }
        if (wait && !c->polled
            && (rv = after_signal(c, SO_RCVTIMEO, started)) != 0) {
            return rv;
        }
    }
    e = errno;
    if (c->timeout_left) {
        /* On failure timeout_left stays set, and the next call retries. */
        (void)lodge_conn_set_timeout(c, c->timeout);
    }
    if (n < 0) {
        if (e == EAGAIN || e == EWOULDBLOCK) {
            return wait ? -ETIMEDOUT : -EAGAIN;
        }
        return -e;
    }
    c->end += (size_t)n;
    return (long)n;
}
