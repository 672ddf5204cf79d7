/* batch_tmp.c - TEMPORARY hive_forward_batch as one hive_forward per item,
 * until the batched pass lands in forward.c (then this file goes). */
#include "hive/model.h"

int hive_forward_batch(struct hive_batch_item *items, int n_items, char *err) {
    if (n_items < 1) return hive_errf(err, HIVE_ERR_INVAL, "empty batch");
    for (int i = 0; i < n_items; i++) {
        struct hive_batch_item *it = &items[i];
        int rc = hive_forward(it->ctx, it->tokens, it->hidden, it->n_tok, it->pos, it->out, 0, err);
        if (rc) return rc;
    }
    return HIVE_OK;
}
