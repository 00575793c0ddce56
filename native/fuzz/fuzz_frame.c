/*
 * fuzz_frame.c: lodge_frame.c's readers on any bytes: a frame header, then
 * the payload walked as pairs. Properties: the header reads what is there
 * and refuses lengths over LODGE_FRAME_MAX; every pair lies inside the
 * payload, the pairs tile it from the start; a walk ends at the end (0) or
 * says it cannot go on (-1), never past; and the pairs read, built again
 * with lodge_pair_add inside a frame, give back the very bytes they came
 * from, under a header that states their length.
 */
#include "fuzz_stubs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const unsigned char *payload;
    size_t length, consumed = 0;
    lodge_frame_head head;
    lodge_pairs it;
    lodge_pair pair;
    lodge_buf b;
    size_t at;
    int rv, n = 0;

    if (size < LODGE_FRAME_HEADER_SIZE) {
        return 0;
    }
    rv = lodge_frame_get_header(data, &head);
    FUZZ_CHECK(head.type == data[0]);
    FUZZ_CHECK(head.length == (((unsigned long)data[4] << 24)
                               | ((unsigned long)data[5] << 16)
                               | ((unsigned long)data[6] << 8) | data[7]));
    FUZZ_CHECK((rv == -1) == (head.length > LODGE_FRAME_MAX));
    FUZZ_CHECK(lodge_frame_name(head.type) != NULL);

    payload = data + LODGE_FRAME_HEADER_SIZE;
    length = size - LODGE_FRAME_HEADER_SIZE;
    lodge_buf_init(&b, p, 16);
    at = lodge_frame_open(&b, head.type);
    lodge_pairs_init(&it, payload, length);
    while ((rv = lodge_pairs_next(&it, &pair)) == 1) {
        const unsigned char *name = (const unsigned char *)pair.name;
        const unsigned char *value = (const unsigned char *)pair.value;

        FUZZ_CHECK(name == payload + consumed + 2);
        FUZZ_CHECK(name + pair.name_len + 4 == value);
        FUZZ_CHECK(value + pair.value_len <= payload + length);
        consumed = (size_t)(value + pair.value_len - payload);
        lodge_pair_add(&b, pair.name, pair.name_len, pair.value,
                       pair.value_len);
        n++;
    }
    FUZZ_CHECK(rv == 0 || rv == -1);
    FUZZ_CHECK(rv != 0 || consumed == length);
    FUZZ_CHECK(rv != -1 || consumed < length);
    /* Once stopped, a walk stays stopped where it was. */
    FUZZ_CHECK(lodge_pairs_next(&it, &pair) == rv);

    lodge_frame_close(&b, at);
    FUZZ_CHECK(!b.failed);
    FUZZ_CHECK(b.len == LODGE_FRAME_HEADER_SIZE + consumed);
    FUZZ_CHECK(memcmp(b.data + LODGE_FRAME_HEADER_SIZE, payload, consumed) == 0);
    FUZZ_CHECK(lodge_frame_get_header(b.data, &head) == 0);
    FUZZ_CHECK(head.type == data[0] && head.length == consumed);
    (void)n;
    return 0;
}
