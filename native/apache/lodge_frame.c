/*
 * lodge_frame.c: building and reading frames (PROTOCOL.md), with every
 * length checked against what is really there before it is trusted.
 */
#include "lodge_frame.h"

#include <stdio.h>

/* Pair length fields: 2 bytes for a name, 4 for a value. */
#define LODGE_PAIR_NAME_MAX 0xFFFFUL
#define LODGE_PAIR_VALUE_MAX 0xFFFFFFFFUL

const char *lodge_frame_name(int type)
{
    switch (type) {
#define LODGE_FRAME_CASE(name, code) case code: return #name;
    LODGE_FRAME_LIST(LODGE_FRAME_CASE)
#undef LODGE_FRAME_CASE
    default:
        return "unknown";
    }
}

static void put_u16(unsigned char *at, unsigned long v)
{
    at[0] = (unsigned char)(v >> 8);
    at[1] = (unsigned char)v;
}

static void put_u32(unsigned char *at, unsigned long v)
{
    at[0] = (unsigned char)(v >> 24);
    at[1] = (unsigned char)(v >> 16);
    at[2] = (unsigned char)(v >> 8);
    at[3] = (unsigned char)v;
}

unsigned lodge_get_u16(const unsigned char *at)
{
    return ((unsigned)at[0] << 8) | at[1];
}

void lodge_put_u16(unsigned char *at, unsigned v)
{
    at[0] = (unsigned char)(v >> 8);
    at[1] = (unsigned char)v;
}

static unsigned long get_u32(const unsigned char *at)
{
    return ((unsigned long)at[0] << 24) | ((unsigned long)at[1] << 16)
         | ((unsigned long)at[2] << 8) | at[3];
}

void lodge_frame_put_header(unsigned char *at, int type, size_t length)
{
    at[0] = (unsigned char)type;
    at[1] = 0;
    at[2] = 0;
    at[3] = 0;
    put_u32(at + 4, (unsigned long)length);
}

/* Returns 0, or -1 when the payload is over LODGE_FRAME_MAX. */
int lodge_frame_get_header(const unsigned char *at, lodge_frame_head *head)
{
    head->type = at[0];
    head->length = get_u32(at + 4);
    return head->length > LODGE_FRAME_MAX ? -1 : 0;
}

void lodge_buf_init(lodge_buf *b, apr_pool_t *p, size_t cap)
{
    b->pool = p;
    b->data = apr_palloc(p, cap);
    b->len = 0;
    b->cap = cap;
    b->failed = 0;
}

/* Makes room for n more bytes and returns where they go. */
unsigned char *lodge_buf_extend(lodge_buf *b, size_t n)
{
    unsigned char *at;

    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2;
        unsigned char *data;

        while (cap < b->len + n) {
            cap *= 2;
        }
        /* The old block stays in the request pool until the request ends. */
        data = apr_palloc(b->pool, cap);
        memcpy(data, b->data, b->len);
        b->data = data;
        b->cap = cap;
    }
    at = b->data + b->len;
    b->len += n;
    return at;
}

/* Starts a frame whose length is filled in by lodge_frame_close. */
size_t lodge_frame_open(lodge_buf *b, int type)
{
    size_t at = b->len;

    lodge_frame_put_header(lodge_buf_extend(b, LODGE_FRAME_HEADER_SIZE),
                           type, 0);
    return at;
}

/* The flags byte of the frame opened at `at`. */
void lodge_frame_set_flags(lodge_buf *b, size_t at, int flags)
{
    b->data[at + 1] = (unsigned char)flags;
}

void lodge_frame_close(lodge_buf *b, size_t at)
{
    size_t length = b->len - at - LODGE_FRAME_HEADER_SIZE;

    if (length > LODGE_FRAME_MAX) {
        b->failed = 1;
    }
    put_u32(b->data + at + 4, (unsigned long)length);
}

void lodge_frame_add_empty(lodge_buf *b, int type)
{
    lodge_frame_put_header(lodge_buf_extend(b, LODGE_FRAME_HEADER_SIZE),
                           type, 0);
}

/*
 * Adds a pair and returns where its name_len name bytes go, for a caller
 * that writes the name in place (HTTP_* names); NULL when a length does
 * not fit its field (b->failed is then set).
 */
char *lodge_pair_add_name_slot(lodge_buf *b, size_t name_len,
                               const char *value, size_t value_len)
{
    unsigned char *at;

    if (name_len > LODGE_PAIR_NAME_MAX || value_len > LODGE_PAIR_VALUE_MAX) {
        b->failed = 1;
        return NULL;
    }
    at = lodge_buf_extend(b, 2 + name_len + 4 + value_len);
    put_u16(at, (unsigned long)name_len);
    put_u32(at + 2 + name_len, (unsigned long)value_len);
    if (value_len) {
        memcpy(at + 2 + name_len + 4, value, value_len);
    }
    return (char *)at + 2;
}

void lodge_pair_add(lodge_buf *b, const char *name, size_t name_len,
                    const char *value, size_t value_len)
{
    char *slot = lodge_pair_add_name_slot(b, name_len, value, value_len);

    if (slot != NULL && name_len) {
        memcpy(slot, name, name_len);
    }
}

void lodge_pair_add_str(lodge_buf *b, const char *name, const char *value)
{
    lodge_pair_add(b, name, strlen(name), value, strlen(value));
}

void lodge_pair_add_num(lodge_buf *b, const char *name, long long value)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%lld", value);

    lodge_pair_add(b, name, strlen(name), digits, (size_t)n);
}

void lodge_pairs_init(lodge_pairs *it, const unsigned char *payload,
                      size_t length)
{
    it->next = payload;
    it->end = payload + length;
}

/*
 * Returns 1 with the next pair, 0 at the end of the payload, -1 when a
 * length points past the end (the payload is then not to be trusted).
 */
int lodge_pairs_next(lodge_pairs *it, lodge_pair *pair)
{
    const unsigned char *p = it->next;
    size_t left = (size_t)(it->end - p);
    size_t name_len, value_len;

    if (left == 0) {
        return 0;
    }
    if (left < 2) {
        return -1;
    }
    name_len = lodge_get_u16(p);
    if (left - 2 < name_len + 4) {
        return -1;
    }
    value_len = get_u32(p + 2 + name_len);
    if (left - 2 - name_len - 4 < value_len) {
        return -1;
    }
    pair->name = (const char *)p + 2;
    pair->name_len = name_len;
    pair->value = (const char *)p + 2 + name_len + 4;
    pair->value_len = value_len;
    it->next = p + 2 + name_len + 4 + value_len;
    return 1;
}
