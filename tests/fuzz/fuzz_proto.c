/* fuzz_proto.c - every wire message decoder of src/cluster/proto.h, as after
 * authentication: u8 type | payload (exactly a decrypted frame). See
 * fuzz_proto.h for the checks; fuzz_link.c reaches the same decoders
 * through a real link, fuzz_weights.c the weight-transfer messages. Seeds:
 * one encoded message of each type (make_corpus). */
#include "fuzz_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fuzz_proto_message(data[0], data + 1, size - 1);
    return 0;
}
