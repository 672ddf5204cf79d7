/* cli.h - the hive command's subcommands, one file each (tools/cli_<name>.c).
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. */
#ifndef HIVE_CLI_H
#define HIVE_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define HIVE_VERSION "0.2.0"

int cli_run(int argc, char **argv);     /* cli_run.c: generation and --chat, alone or across --peers */
int cli_mkmodel(int argc, char **argv); /* cli_mkmodel.c: synthetic GGUF models */
int cli_vocab(int argc, char **argv);   /* cli_vocab.c: tokenizer.json -> vocab-only GGUF */
int cli_tokenize(int argc, char **argv);/* cli_vocab.c: print token ids for a text */
int cli_node(int argc, char **argv);    /* cli_node.c: the node daemon */
int cli_plan(int argc, char **argv);    /* cli_plan.c: print a plan without running */
int cli_keygen(int argc, char **argv);  /* cli_keygen.c: write a cluster key */
int cli_demo(int argc, char **argv);    /* cli_demo.c: local 3-node cluster telling a story */
int cli_bench(int argc, char **argv);   /* cli_bench.c: tok/s measurement */
int cli_serve(int argc, char **argv);   /* cli_serve.c: OpenAI-compatible HTTP API */
int cli_nodes(int argc, char **argv);   /* cli_nodes.c: list the nodes found on the LAN */
int cli_cache(int argc, char **argv);   /* cli_cache.c: list or clear the stage cache */
int cli_pull(int argc, char **argv);    /* cli_pull.c: download a GGUF into hive's store */
int cli_models(int argc, char **argv);  /* cli_models.c: list the models found by name */
int cli_rm(int argc, char **argv);      /* cli_models.c: remove a model from hive's store */
int cli_ledger(int argc, char **argv);  /* cli_ledger.c: credit per node from the contribution ledger */
int cli_job(int argc, char **argv);     /* cli_job.c: the queen: a job over replicas and workers */
int cli_worker(int argc, char **argv);  /* cli_worker.c: a worker that dials out to a queen */

/* Shared by subcommands: where the default model lives (stories260K), fetched
 * from $HIVE_MODELS, ../shared/models or Hugging Face. Writes the path into
 * buf. Returns 0 or prints an error and returns 1. (cli_common.c) */
int cli_default_model(char *buf, size_t cap);

/* hive's store directory ($HIVE_MODELS, else the store's default; a
 * node-only build: $HIVE_MODELS only). 0 or -1. (cli_fetch.c) */
int cli_store_dir(char *buf, size_t cap);
/* Downloads url to path (through path.part, which must turn out to be a
 * GGUF file). 0, or 1 after printing why. A node-only build has no libcurl
 * and says so. (cli_fetch.c, cli_fetch_none.c) */
int cli_download(const char *url, const char *path);

/* What -m NAME means, the same for every command: a path, a name in hive's
 * store, an Ollama model (llama3.2, qwen2.5:7b) or an LM Studio file, read in
 * place (src/store, include/hive/store.h). Writes the GGUF's path into path.
 * Returns 0, or prints one line "hive: ..." (with close matches) and returns 1.
 * A node-only build takes paths only. (cli_fetch.c, cli_fetch_none.c) */
int cli_resolve_model(const char *name, char *path, size_t cap);

/* `--peers auto`: how long run and serve browse the LAN before planning. */
#define CLI_DISCOVER_MS 2000

struct hive_sched_opts;
/* The cluster part of a scheduler's options, the same for run and serve:
 *   peers "auto": the nodes found on the LAN (mDNS; $HIVE_MDNS_IFACE picks the
 *                 interface) and this machine, with the cluster key;
 *   a list:       those nodes (addrs[cap] points into *buf, which the caller
 *                 frees), with the key; head_layers: this machine too; "auto"
 *                 in the list adds the nodes found on the LAN (the two mix);
 *   NULL:         this machine alone, with a random in-process key.
 * Returns 0, or prints "hive CMD: ..." and returns 1. (cli_common.c) */
int cli_cluster_opts(const char *cmd, const char *peers, const char *key_path, int head_layers,
                     struct hive_sched_opts *so, const char **addrs, int cap, char **buf);

struct hive_sampler_params;
/* Parses one sampling option of the generating commands (--temp, --top-k,
 * --top-p, --min-p, --repeat-penalty, --repeat-last-n, --presence-penalty,
 * --frequency-penalty, --seed/-s) and its value into sp, and checks the
 * result with hive_sampler_params_check. Returns 0 when handled, 1 when opt
 * is not a sampling option, -1 when the value is bad (after printing
 * "hive CMD: ..." with the allowed range). --seed sets *seed_set.
 * (cli_common.c) */
int cli_sampler_option(const char *cmd, const char *opt, const char *val, struct hive_sampler_params *sp,
                       int *seed_set);
/* Speculative decoding, the same for run and serve. */
#define CLI_DRAFT_HELP                                                                                            \
    "speculative decoding (the output is unchanged; faster where the drafts are right):\n"                        \
    "  --draft MODEL          a small model with the same vocabulary drafts tokens (run on this machine)\n"       \
    "  --draft-ngram          draft from the text so far (prompt lookup; no second model)\n"                     \
    "  --draft-max K          tokens drafted per pass, at most (1-16, default 8; adapts to the acceptance)\n"     \
    "  --draft-fixed          always draft --draft-max tokens\n"
struct cli_draft {
    const char *model;
    int ngram, max, fixed;
};
/* Parses one of those options. Returns 0 when handled (*took_value: val was
 * its value), 1 when opt is not one, -1 when its value is bad (printed). */
int cli_draft_option(const char *cmd, const char *opt, const char *val, struct cli_draft *d, int *took_value);
/* Resolves the draft model (path or name, into path[cap]) and sets so's
 * draft fields. Returns 0, or prints "hive CMD: ..." and returns 1. */
int cli_draft_apply(const char *cmd, const struct cli_draft *d, struct hive_sched_opts *so, char *path, size_t cap);

/* A random 32-bit seed (for runs without --seed; print it so that the run
 * can be repeated). */
uint64_t cli_random_seed(void);

/* Parses an integer option value in [lo, hi]; prints "hive CMD: bad value
 * 'V' for OPT (an integer from lo to hi)" and returns -1 when it is not. */
int cli_int_option(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out);

/* Prints a cJSON document (a cJSON *) on stdout, indented, and deletes it.
 * Returns 0, or 1 when it cannot be rendered. (cli_common.c) */
int cli_print_json(void *doc);

/* Threads `run`, `bench` and `node` use without -t: every core. */
int cli_default_threads(void);

/* Set by the SIGINT/SIGTERM handler of cli_catch_interrupt: generating loops
 * poll it and stop cleanly (exit status 130). */
extern volatile sig_atomic_t cli_interrupted;
/* Installs that handler (a second Ctrl-C kills the process as usual). */
void cli_catch_interrupt(void);

#endif
