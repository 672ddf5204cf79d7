/* hive.c - the `hive` command: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* HIVE_NODE_ONLY (CMakeLists.txt) leaves serve, pull, models, rm, nodes and
 * demo out. */
#ifdef HIVE_NODE_ONLY
#define HIVE_NODE_ONLY_BUILD 1
#else
#define HIVE_NODE_ONLY_BUILD 0
#endif

/* Weak so that the binary links while a subcommand's file is absent; a
 * missing one reports itself instead of crashing. */
#pragma weak cli_run
#pragma weak cli_mkmodel
#pragma weak cli_vocab
#pragma weak cli_tokenize
#pragma weak cli_node
#pragma weak cli_plan
#pragma weak cli_keygen
#pragma weak cli_demo
#pragma weak cli_bench
#pragma weak cli_serve
#pragma weak cli_nodes
#pragma weak cli_cache
#pragma weak cli_pull
#pragma weak cli_models
#pragma weak cli_rm
#pragma weak cli_ledger
#pragma weak cli_job
#pragma weak cli_worker

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static void usage(const struct command *cmds, size_t n) {
    fprintf(stderr, "usage: hive <command> [options]    (hive %s; hive --version)\n\ncommands:\n", HIVE_VERSION);
    for (size_t i = 0; i < n; i++)
        if (cmds[i].fn) fprintf(stderr, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(stderr, "\nRun 'hive <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    const struct command cmds[] = {
        {"demo", cli_demo, "run a local 3-node cluster telling a story (the main job)"},
        {"run", cli_run, "generate text from a model (locally or across --peers)"},
        {"serve", cli_serve, "serve an OpenAI-compatible HTTP API (alone or across --peers)"},
        {"node", cli_node, "run the node daemon that serves stages"},
        {"nodes", cli_nodes, "list the hive nodes on the LAN (mDNS, same cluster key)"},
        {"plan", cli_plan, "print the plan for a model over --peers without running"},
        {"keygen", cli_keygen, "write a new cluster key"},
        {"bench", cli_bench, "measure tokens per second"},
        {"pull", cli_pull, "download a GGUF from Hugging Face or a URL into hive's store"},
        {"models", cli_models, "list the models -m NAME finds (hive's store, Ollama, LM Studio)"},
        {"rm", cli_rm, "remove a model from hive's store"},
        {"job", cli_job, "run a job: subtasks in parallel on replicas and workers, then merged"},
        {"worker", cli_worker, "take subtasks from a queen (hive job --workers-listen), on a model or --backend"},
        {"ledger", cli_ledger, "print the contribution ledger: credit per node"},
        {"cache", cli_cache, "list or clear the stage files a node keeps"},
        {"mkmodel", cli_mkmodel, "write a synthetic GGUF model"},
        {"vocab", cli_vocab, "write a vocab-only GGUF from a tokenizer.json"},
        {"tokenize", cli_tokenize, "print the token ids of a text"},
    };
    size_t n = sizeof cmds / sizeof cmds[0];
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version"))) {
        printf("hive %s\n", HIVE_VERSION);
        return 0;
    }
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(cmds, n);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name)) continue;
        if (!cmds[i].fn) {
            fprintf(stderr, "hive: '%s' is not in this build%s\n", argv[1],
                    HIVE_NODE_ONLY_BUILD ? " (a node-only build, as on Windows: no HTTP server, model store, downloads,"
                                           " LAN discovery or demo; peers are given with --peers host:port)"
                                         : "");
            return 2;
        }
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "hive: unknown command '%s'\n\n", argv[1]);
    usage(cmds, n);
    return 2;
}
