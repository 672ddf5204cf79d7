/* matmul.c - y (n_tok, n_rows) = x (n_tok, n_cols) @ W^T on the thread pool.
 *
 * Weight types with packed kernels (kern_gemm: q4_0 and q8_0 on AVX-512 and
 * on AVX2, q4_k and q6_k on AVX2) take matmul_packed: activations are
 * prepared once per token, then threads take chunks of rows (never tokens:
 * every thread reads only its own weights) and run the decode kernel
 * (n_tok = 1), the few-token kernel (small batches: continuous batching's
 * decode steps) or the batched one (prefill); all give every (row, token)
 * the same bits.
 *
 * Everything else, two phases:
 *  1. the activation rows are converted once to the weight type's dot type
 *     (q8_0 / q8_1 / q8_k; f32 rows are used as they are), split by tokens;
 *  2. threads take chunks of output rows; each walks its chunk in tiles
 *     small enough to stay in L1 and, for every tile, runs all tokens, so
 *     the weights are streamed from memory once per call.
 * With several tokens, weights whose kernel has a several-token twin
 * (quant_vec_dot_toks_fn: q4_k and q6_k at AVX-512 VNNI, every k-quant on NEON) run
 * QUANT_TOKS tokens per weight row, so each weight block is
 * unpacked once for them; that twin gives every (row, token) the bits of the
 * one-token kernel.
 * Rows go to threads in fixed groups of KERN_ROWS (a multi-row kernel shares
 * each activation block among them; it gives every row the bits of the
 * one-row kernel anyway). Every output element is thus computed the same way
 * whatever the thread count or n_tok: results are bit-identical for 1..N
 * threads and for single-token vs batched calls.
 *
 * hive_matmul_many runs several matrices over one x either way in one pool
 * round (x prepared once per activation layout or dot type), so decode's
 * q/k/v and gate/up wait for the slowest thread once instead of per matrix.
 * A call mixing the two kinds runs its matrices one at a time.
 *
 * The quantized activations live in a scratch buffer borrowed from a small
 * process-wide set of growing slots, so the decode path does not allocate. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kern.h"

/* Weight bytes per row tile: well inside a 32 KiB L1 data cache. */
#define MM_TILE_BYTES (16 * 1024)
/* Below this many activation elements phase 1 runs on the calling thread:
 * waking the pool costs more than quantizing a few rows. */
#define MM_QUANT_SERIAL_ELEMS (1 << 15)
/* Concurrent callers (e.g. several nodes in one test process) each take a
 * slot; past this many a call falls back to a private allocation. */
#define MM_SCRATCH_SLOTS 8

/* ---- scratch ---- */

struct scratch_slot {
    int in_use;
    size_t cap;
    void *buf;
};

static struct scratch_slot scratch_slots[MM_SCRATCH_SLOTS];
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;

/* Borrows n_bytes of 64-byte aligned scratch. *slot is the slot index or -1
 * for a private buffer; give it back with scratch_release. NULL: no memory. */
static void *scratch_acquire(size_t n_bytes, int *slot) {
    pthread_mutex_lock(&scratch_mu);
    for (int i = 0; i < MM_SCRATCH_SLOTS; i++) {
        struct scratch_slot *s = &scratch_slots[i];
        if (s->in_use) continue;
        if (s->cap < n_bytes) {
            size_t cap = n_bytes + n_bytes / 4; /* slack: prefill sizes vary a little */
            if (cap < n_bytes) cap = n_bytes;
            void *buf = hive_malloc_aligned(cap);
            if (!buf) break;
            hive_free_aligned(s->buf);
            s->buf = buf;
            s->cap = cap;
        }
        s->in_use = 1;
        *slot = i;
        pthread_mutex_unlock(&scratch_mu);
        return s->buf;
    }
    pthread_mutex_unlock(&scratch_mu);
    *slot = -1;
    return hive_malloc_aligned(n_bytes);
}

static void scratch_release(void *buf, int slot) {
    if (slot < 0) {
        hive_free_aligned(buf);
        return;
    }
    pthread_mutex_lock(&scratch_mu);
    scratch_slots[slot].in_use = 0;
    pthread_mutex_unlock(&scratch_mu);
}

/* ---- handing rows to threads ----
 * Threads take chunks of rows from a shared counter until none are left: the
 * cores rarely get equal memory bandwidth, and a static split would leave one
 * waiting for the other. Which thread computes a row changes nothing in its
 * bits. Chunks are a multiple of MM_ROW_ALIGN rows (the row blocks of the
 * kernels: 4 at AVX-512, 8 at AVX2, KERN_ROWS for the two-phase ones), about
 * MM_CHUNKS_PER_THREAD per thread, at least MM_CHUNK_MIN_BYTES of weights. */
#define MM_ROW_ALIGN 8
#define MM_CHUNKS_PER_THREAD 8
#define MM_CHUNK_MIN_BYTES (32 * 1024)
_Static_assert(MM_ROW_ALIGN % KERN_ROWS == 0, "chunks hold whole row groups");

static int64_t chunk_rows_for(int64_t n_rows, uint64_t w_row_bytes, int n_threads) {
    int64_t chunk = n_rows / ((int64_t)n_threads * MM_CHUNKS_PER_THREAD);
    int64_t min_rows = (int64_t)(MM_CHUNK_MIN_BYTES / (w_row_bytes ? w_row_bytes : 1));
    if (chunk < min_rows) chunk = min_rows;
    return (chunk + MM_ROW_ALIGN - 1) / MM_ROW_ALIGN * MM_ROW_ALIGN;
}

/* The part whose chunks hold global chunk c: first[p] = chunks of the parts before p. */
static int part_of_chunk(const int64_t *first, int n_parts, int64_t c) {
    int p = 0;
    while (p + 1 < n_parts && c >= first[p + 1]) p++;
    return p;
}

/* Where part p's prepared x lies in the scratch: where part `same` has it
 * (same < p), or, with same = -1, in n_tok * row_bytes new bytes at *total.
 * Returns 1 when p prepares it, 0 when it shares, -1 past what size_t holds. */
static int place_act(size_t off[], int p, int same, size_t row_bytes, int64_t n_tok, size_t *total) {
    if (same >= 0) {
        off[p] = off[same];
        return 0;
    }
    if ((uint64_t)n_tok > SIZE_MAX / 8 / row_bytes) return -1;
    off[p] = *total;
    *total += row_bytes * (size_t)n_tok;
    return 1;
}

/* ---- the two phases ---- */

/* One weight matrix of a two-phase call. Parts with the same dot type share
 * one converted copy of x. */
struct mm_part {
    quant_vec_dot_fn dot;
    kern_vec_dot_rows_fn dot_rows;  /* KERN_ROWS rows at once, or NULL */
    quant_vec_dot_toks_fn dot_toks; /* QUANT_TOKS tokens at once, or NULL */
    quant_quant_fn quant;           /* activation conversion; NULL for f32 dot type */
    int dot_type;
    const uint8_t *w;               /* (n_rows, w_row_bytes) */
    uint64_t w_row_bytes;
    int64_t n_rows;
    float *y;                       /* (n_tok, n_rows) */
    const uint8_t *act;             /* (n_tok, act_row_bytes), dot type */
    uint8_t *act_out;               /* the same bytes while phase 1 writes them; NULL: another part's */
    uint64_t act_row_bytes;
    int64_t tile_rows;
    int64_t chunk_rows;
};

struct mm_job {
    struct mm_part part[HIVE_MATMUL_MAX_PARTS];
    int64_t first_chunk[HIVE_MATMUL_MAX_PARTS]; /* chunks of the parts before */
    int n_parts;
    int64_t n_cols, n_tok, n_chunks;
    const float *x; /* (n_tok, n_cols) */
    atomic_int_fast64_t next_chunk;
};

static void quant_tokens(const struct mm_job *j, int64_t t0, int64_t t1) {
    for (int p = 0; p < j->n_parts; p++) {
        const struct mm_part *q = &j->part[p];
        if (!q->act_out) continue;
        for (int64_t t = t0; t < t1; t++)
            q->quant(j->x + t * j->n_cols, q->act_out + (uint64_t)t * q->act_row_bytes, j->n_cols);
    }
}

static void quant_task(void *arg, int ith, int nth) {
    const struct mm_job *j = arg;
    int64_t t0, t1;
    hive_split_range(j->n_tok, ith, nth, &t0, &t1);
    quant_tokens(j, t0, t1);
}

/* Output rows [r0, r1) of part q for token t. */
static void rows_one_token(const struct mm_job *j, const struct mm_part *q, int64_t r0, int64_t r1, int64_t t) {
    const uint8_t *a = q->act + (uint64_t)t * q->act_row_bytes;
    float *yt = q->y + t * q->n_rows;
    int64_t r = r0;
    if (q->dot_rows) {
        for (; r < r1; r += KERN_ROWS) {
            int nr = r1 - r < KERN_ROWS ? (int)(r1 - r) : KERN_ROWS;
            q->dot_rows(j->n_cols, &yt[r], q->w + (uint64_t)r * q->w_row_bytes, q->w_row_bytes, a, nr);
        }
        return;
    }
    for (; r < r1; r++) q->dot(j->n_cols, &yt[r], q->w + (uint64_t)r * q->w_row_bytes, a);
}

/* Output rows [r_begin, r_end) of part q, in tiles. */
static void rows_range(const struct mm_job *j, const struct mm_part *q, int64_t r_begin, int64_t r_end) {
    for (int64_t r0 = r_begin; r0 < r_end; r0 += q->tile_rows) {
        int64_t r1 = r0 + q->tile_rows < r_end ? r0 + q->tile_rows : r_end;
        if (q->dot_toks && j->n_tok > 1) {
            /* a few tokens per weight row: each weight block is unpacked once for them */
            for (int64_t t = 0; t < j->n_tok; t += QUANT_TOKS) {
                int nt = j->n_tok - t < QUANT_TOKS ? (int)(j->n_tok - t) : QUANT_TOKS;
                const uint8_t *a = q->act + (uint64_t)t * q->act_row_bytes;
                for (int64_t r = r0; r < r1; r += QUANT_TOK_ROWS) {
                    int nr = r1 - r < QUANT_TOK_ROWS ? (int)(r1 - r) : QUANT_TOK_ROWS;
                    q->dot_toks(j->n_cols, &q->y[t * q->n_rows + r], q->n_rows, q->w + (uint64_t)r * q->w_row_bytes,
                                (size_t)q->w_row_bytes, nr, a, (size_t)q->act_row_bytes, nt);
                }
            }
            continue;
        }
        for (int64_t t = 0; t < j->n_tok; t++) rows_one_token(j, q, r0, r1, t);
    }
}

/* Chunks of rows, of every part in turn (see chunk_rows_for). */
static void rows_task(void *arg, int ith, int nth) {
    struct mm_job *j = arg;
    (void)ith, (void)nth;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next_chunk, 1, memory_order_relaxed);
        if (c >= j->n_chunks) return;
        int p = part_of_chunk(j->first_chunk, j->n_parts, c);
        const struct mm_part *q = &j->part[p];
        int64_t r0 = (c - j->first_chunk[p]) * q->chunk_rows, r1 = r0 + q->chunk_rows;
        rows_range(j, q, r0, r1 < q->n_rows ? r1 : q->n_rows);
    }
}

/* The parts (checked, none with a packed kernel, n_rows >= 1) over the same
 * x: x converted once per dot type, then every part's rows in one pool round. */
static int matmul_rows(hive_pool *pool, const hive_matmul_part *parts, int n_parts, int64_t n_cols, const float *x,
                       int64_t n_tok) {
    int isa = hive_isa_current();
    struct mm_job j = {.n_parts = n_parts, .n_cols = n_cols, .n_tok = n_tok, .x = x};
    size_t act_total = 0, act_off[HIVE_MATMUL_MAX_PARTS];
    int converts[HIVE_MATMUL_MAX_PARTS] = {0}; /* the first part of each dot type converts x for the others */
    for (int p = 0; p < n_parts; p++) {
        struct mm_part *q = &j.part[p];
        int wt = parts[p].wtype;
        *q = (struct mm_part){
            .dot = tensor_vec_dot(wt, isa), .dot_rows = tensor_vec_dot_rows(wt, isa),
            .dot_toks = tensor_vec_dot_toks(wt, isa), .dot_type = tensor_dot_type(wt), .w = parts[p].w,
            .w_row_bytes = hive_type_row_bytes(wt, n_cols), .n_rows = parts[p].n_rows, .y = parts[p].y,
        };
        q->chunk_rows = chunk_rows_for(q->n_rows, q->w_row_bytes, hive_pool_size(pool));
        j.first_chunk[p] = j.n_chunks;
        j.n_chunks += (q->n_rows + q->chunk_rows - 1) / q->chunk_rows;
        q->tile_rows = (int64_t)(MM_TILE_BYTES / q->w_row_bytes) / KERN_ROWS * KERN_ROWS;
        if (q->tile_rows < KERN_ROWS) q->tile_rows = KERN_ROWS;
        if (q->dot_type == HIVE_TYPE_F32) {
            q->act = (const uint8_t *)x;
            q->act_row_bytes = (uint64_t)n_cols * sizeof(float);
            continue;
        }
        q->quant = tensor_quant(q->dot_type, isa);
        q->act_row_bytes = hive_type_row_bytes(q->dot_type, n_cols);
        if (!q->quant || q->act_row_bytes == 0) return HIVE_ERR_UNSUPPORTED;
        int same = -1;
        for (int e = 0; e < p && same < 0; e++)
            if (j.part[e].dot_type == q->dot_type) same = e;
        converts[p] = place_act(act_off, p, same, (size_t)q->act_row_bytes, n_tok, &act_total);
        if (converts[p] < 0) return HIVE_ERR_NOMEM;
    }
    int slot = -1;
    uint8_t *scratch = NULL;
    if (act_total) {
        scratch = scratch_acquire(act_total, &slot);
        if (!scratch) return HIVE_ERR_NOMEM;
        for (int p = 0; p < n_parts; p++) {
            struct mm_part *q = &j.part[p];
            if (q->dot_type == HIVE_TYPE_F32) continue;
            q->act = scratch + act_off[p];
            if (converts[p]) q->act_out = scratch + act_off[p];
        }
        if (n_tok * n_cols < MM_QUANT_SERIAL_ELEMS || hive_pool_size(pool) == 1)
            quant_tokens(&j, 0, n_tok);
        else
            hive_pool_run(pool, quant_task, &j);
    }
    atomic_init(&j.next_chunk, 0);
    hive_pool_run(pool, rows_task, &j);
    if (scratch) scratch_release(scratch, slot);
    return HIVE_OK;
}

/* ---- packed-kernel path (kern_gemm) ---- */

/* Kernel by token count (bench_matmul, 5632 x 2048, one thread, cold, us per
 * token, q4_0 / q8_0, Zen 4 VM): n_tok 1 streams rows (DECODE, ~200 / ~320,
 * bound by memory); from 2 on, FEW (each group of a weight row unpacked once
 * in registers for up to 16 tokens, weights prefetched) is compute-bound
 * (2: ~140 / ~215, 4: ~105 / ~135, 8: ~90 / ~105, 16: ~85 / ~95) where the
 * former choice cost ~200 / ~315 at 2-3 (DECODE per token) and ~145 / ~150+
 * at 8 (PACKED: rows repacked into scratch, then a 4 x 3 register tile).
 * From 32 tokens on the two are within noise (~85-95), and PACKED, what
 * prefill has always used, stays. */
#define MM_FEW_MIN 2 /* FEW at 1 token: cold ~320 us (q4_0) against DECODE ~260 */
#define MM_BATCH_MIN 32

/* One weight matrix of a packed call. Parts whose kernels share act_prep
 * share one prepared copy of x. */
struct gemm_part {
    const kern_gemm *k;
    struct kern_gemm_args args; /* the whole matrix; rows, y and scratch set per chunk */
    uint8_t *act_out;           /* args.act while the prep round writes it; NULL: prepared by an earlier part */
    int64_t chunk_rows;         /* a multiple of MM_ROW_ALIGN */
};

struct gemm_job {
    struct gemm_part part[HIVE_MATMUL_MAX_PARTS];
    int64_t first_chunk[HIVE_MATMUL_MAX_PARTS]; /* chunks of the parts before */
    int n_parts;
    int64_t n_chunks;
    const float *x;
    uint8_t *scratch; /* n_threads * pack_bytes */
    size_t pack_bytes;
    atomic_int_fast64_t next_chunk;
};

static void gemm_prep_task(void *arg, int ith, int nth) {
    const struct gemm_job *j = arg;
    for (int p = 0; p < j->n_parts; p++) {
        const struct gemm_part *q = &j->part[p];
        if (!q->act_out) continue;
        int64_t t0, t1;
        hive_split_range(q->args.n_tok, ith, nth, &t0, &t1);
        for (int64_t t = t0; t < t1; t++)
            q->k->act_prep(j->x + t * q->args.n_cols, q->act_out + (size_t)t * q->args.act_stride, q->args.n_cols,
                           q->args.batched);
    }
}

/* Chunks of rows, of every part in turn (see chunk_rows_for). */
static void gemm_rows_task(void *arg, int ith, int nth) {
    struct gemm_job *j = arg;
    (void)nth;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next_chunk, 1, memory_order_relaxed);
        if (c >= j->n_chunks) return;
        int p = part_of_chunk(j->first_chunk, j->n_parts, c);
        const struct gemm_part *q = &j->part[p];
        struct kern_gemm_args a = q->args;
        int64_t r0 = (c - j->first_chunk[p]) * q->chunk_rows, r1 = r0 + q->chunk_rows;
        if (r1 > a.n_rows) r1 = a.n_rows;
        a.scratch = j->scratch ? j->scratch + (size_t)ith * j->pack_bytes : NULL;
        a.w = q->args.w + (size_t)r0 * a.w_stride;
        a.n_rows = r1 - r0;
        a.y = q->args.y + r0;
        q->k->gemm(&a);
    }
}

/* The parts (each with a packed kernel, n_rows >= 1) over the same x: x
 * prepared once per act_prep, then every part's rows in one pool round. */
static int matmul_packed(hive_pool *pool, const kern_gemm *const ks[], const hive_matmul_part *parts, int n_parts,
                         int64_t n_cols, const float *x, int64_t n_tok) {
    struct gemm_job j = {.n_parts = n_parts, .x = x};
    int batched = n_tok >= MM_BATCH_MIN ? KERN_GEMM_PACKED : n_tok >= MM_FEW_MIN ? KERN_GEMM_FEW : KERN_GEMM_DECODE;
    int nth = hive_pool_size(pool);
    size_t act_total = 0, act_off[HIVE_MATMUL_MAX_PARTS];
    int prepares[HIVE_MATMUL_MAX_PARTS]; /* the first part of each act_prep prepares x for the others */
    for (int p = 0; p < n_parts; p++) {
        struct gemm_part *q = &j.part[p];
        uint64_t w_row_bytes = hive_type_row_bytes(parts[p].wtype, n_cols);
        q->k = ks[p];
        q->args = (struct kern_gemm_args){
            .n_cols = n_cols, .n_rows = parts[p].n_rows, .n_tok = n_tok, .y_stride = parts[p].n_rows,
            .w = parts[p].w, .w_stride = (size_t)w_row_bytes, .act_stride = ks[p]->act_bytes(n_cols),
            .y = parts[p].y, .batched = batched,
        };
        q->chunk_rows = chunk_rows_for(parts[p].n_rows, w_row_bytes, nth);
        j.first_chunk[p] = j.n_chunks;
        j.n_chunks += (parts[p].n_rows + q->chunk_rows - 1) / q->chunk_rows;
        size_t pack = batched == KERN_GEMM_PACKED ? (ks[p]->pack_bytes(n_cols) + 63) / 64 * 64 : 0;
        if (pack > j.pack_bytes) j.pack_bytes = pack;
        int same = -1;
        for (int e = 0; e < p && same < 0; e++)
            if (ks[e]->act_prep == ks[p]->act_prep && j.part[e].args.act_stride == q->args.act_stride) same = e;
        prepares[p] = place_act(act_off, p, same, q->args.act_stride, n_tok, &act_total);
        if (prepares[p] < 0) return HIVE_ERR_NOMEM;
    }
    atomic_init(&j.next_chunk, 0);
    if (j.pack_bytes && (size_t)nth > (SIZE_MAX / 2 - act_total) / j.pack_bytes) return HIVE_ERR_NOMEM;
    int slot = -1;
    uint8_t *buf = scratch_acquire(act_total + (size_t)nth * j.pack_bytes, &slot);
    if (!buf) return HIVE_ERR_NOMEM;
    for (int p = 0; p < n_parts; p++) {
        j.part[p].args.act = buf + act_off[p];
        if (prepares[p]) j.part[p].act_out = buf + act_off[p];
    }
    j.scratch = j.pack_bytes ? buf + act_total : NULL;
    if (n_tok * n_cols < MM_QUANT_SERIAL_ELEMS || nth == 1)
        gemm_prep_task(&j, 0, 1);
    else
        hive_pool_run(pool, gemm_prep_task, &j);
    hive_pool_run(pool, gemm_rows_task, &j);
    scratch_release(buf, slot);
    return HIVE_OK;
}

/* The checks every call makes: HIVE_OK and *run = 0 when there is nothing
 * to compute (y zeroed where n_cols is 0). */
static int check_args(int wtype, int64_t n_rows, int64_t n_cols, int64_t n_tok, float *y, int *run) {
    *run = 0;
    if (n_rows < 0 || n_cols < 0 || n_tok < 0) return HIVE_ERR_INVAL;
    int dot_type = tensor_dot_type(wtype);
    if (dot_type < 0 || !tensor_vec_dot(wtype, hive_isa_current())) return HIVE_ERR_UNSUPPORTED;
    if (n_cols % hive_type_block_size(wtype) || n_cols % hive_type_block_size(dot_type)) return HIVE_ERR_INVAL;
    if (n_rows == 0 || n_tok == 0) return HIVE_OK;
    if (n_cols > 0 && (n_tok > INT64_MAX / n_cols || n_rows > INT64_MAX / n_tok)) return HIVE_ERR_INVAL;
    if (n_cols == 0) {
        for (int64_t i = 0; i < n_rows * n_tok; i++) y[i] = 0.0f;
        return HIVE_OK;
    }
    *run = 1;
    return HIVE_OK;
}

int hive_matmul_many(hive_pool *pool, const hive_matmul_part *parts, int n_parts, int64_t n_cols, const float *x,
                     int64_t n_tok) {
    if (n_parts < 0 || n_parts > HIVE_MATMUL_MAX_PARTS) return HIVE_ERR_INVAL;
    const kern_gemm *ks[HIVE_MATMUL_MAX_PARTS];
    hive_matmul_part run_parts[HIVE_MATMUL_MAX_PARTS];
    int n_run = 0, all_packed = 1, none_packed = 1;
    for (int p = 0; p < n_parts; p++) { /* every part checked before any is computed */
        int run, rc = check_args(parts[p].wtype, parts[p].n_rows, n_cols, n_tok, parts[p].y, &run);
        if (rc) return rc;
        if (!run) continue;
        ks[n_run] = tensor_gemm(parts[p].wtype, hive_isa_current());
        all_packed &= ks[n_run] != NULL;
        none_packed &= ks[n_run] == NULL;
        run_parts[n_run++] = parts[p];
    }
    if (n_run == 0) return HIVE_OK;
    if (all_packed) return matmul_packed(pool, ks, run_parts, n_run, n_cols, x, n_tok);
    if (none_packed) return matmul_rows(pool, run_parts, n_run, n_cols, x, n_tok);
    for (int p = 0; p < n_run; p++) { /* a mix: one kind of round each */
        int rc = hive_matmul(pool, run_parts[p].wtype, run_parts[p].w, run_parts[p].n_rows, n_cols, x, n_tok,
                             run_parts[p].y);
        if (rc) return rc;
    }
    return HIVE_OK;
}

int hive_matmul(hive_pool *pool, int wtype, const void *w, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y) {
    int run, rc = check_args(wtype, n_rows, n_cols, n_tok, y, &run);
    if (rc || !run) return rc;
    const kern_gemm *packed = tensor_gemm(wtype, hive_isa_current());
    hive_matmul_part part = {.wtype = wtype, .w = w, .n_rows = n_rows, .y = y};
    if (packed) return matmul_packed(pool, &packed, &part, 1, n_cols, x, n_tok);
    return matmul_rows(pool, &part, 1, n_cols, x, n_tok);
}
