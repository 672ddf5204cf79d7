/* cli.h - the hive command's subcommands, one file each (tools/cli_<name>.c).
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. */
#ifndef HIVE_CLI_H
#define HIVE_CLI_H

int cli_run(int argc, char **argv);     /* cli_run.c: single-node generation, --chat */
int cli_run_peers(int argc, char **argv); /* cli_peers.c: `hive run --peers ...`, called by cli_run */
int cli_mkmodel(int argc, char **argv); /* cli_mkmodel.c: synthetic GGUF models */
int cli_vocab(int argc, char **argv);   /* cli_vocab.c: tokenizer.json -> vocab-only GGUF */
int cli_tokenize(int argc, char **argv);/* cli_vocab.c: print token ids for a text */
int cli_node(int argc, char **argv);    /* cli_node.c: the node daemon */
int cli_plan(int argc, char **argv);    /* cli_plan.c: print a plan without running */
int cli_keygen(int argc, char **argv);  /* cli_keygen.c: write a cluster key */
int cli_demo(int argc, char **argv);    /* cli_demo.c: local 3-node cluster telling a story */
int cli_bench(int argc, char **argv);   /* cli_bench.c: tok/s measurement */
int cli_cache(int argc, char **argv);   /* cli_cache.c: list or clear the stage cache */

/* Shared by subcommands: where the default model lives (stories260K), fetched
 * from $HIVE_MODELS, ../shared/models or Hugging Face. Writes the path into
 * buf. Returns 0 or prints an error and returns 1. (cli_common.c) */
int cli_default_model(char *buf, size_t cap);

struct hive_sampler_params;
/* Parses one sampling option shared by `hive run` and `hive run --peers`
 * (--temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
 * --seed/-s) and its value into sp. Returns 0 when handled, 1 when opt is
 * not a sampling option, -1 when the value is bad. (cli_common.c) */
int cli_sampler_option(const char *opt, const char *val, struct hive_sampler_params *sp);

#endif
