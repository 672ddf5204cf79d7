/* test_cross_win.c - one cluster across operating systems: a Linux head
 * (this build's hive) drives a Windows node (build-mingw/hive.exe, built by
 * scripts/cross/mingw.sh, run under wine on 127.0.0.1) beside a Linux node.
 * Then every machine of the house at once: the x86-64 head holds a stage
 * itself, an aarch64 node (build-aarch64/hive from scripts/cross/aarch64.sh,
 * under qemu-aarch64) the next and the Windows node the last.
 * Each holds a stage of stories260K (and of a synthetic llama model); the
 * token log of every run must equal the single-node reference computed
 * in-process. A second run must find the Windows node's stage in its cache
 * (a stage file written and read back on Windows).
 *
 * Skips (77) unless configured with -DHIVE_CROSS_TESTS=ON and wine and
 * build-mingw/hive.exe are there. */
#include <dirent.h>

#include "test_cluster_util.h"

#ifndef HIVE_CROSS_TESTS
int main(void) {
    printf("SKIP: configure with -DHIVE_CROSS_TESTS=ON (and run scripts/cross/mingw.sh) for the Windows node test\n");
    return SKIP_CODE;
}
#else
#define PROMPT "Once upon a time"

static struct tc_env env, win_env, arm_env;
static struct tc_node lin, win, arm;

/* One head run over peers (extra: its options): n_stages stages and the
 * single-node tokens; *st gets its stats. Returns 0, -1 when it failed. */
static int run_ring(const char *model, int n_predict, const char *peers, const char *const *extra, int n_stages,
                    const char *what, struct tc_stats *st) {
    int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, n_predict, &greedy, ref, TC_MAX_TOK);
    CHECK(n_ref > 5);
    char stats_path[300];
    snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
    int rc = tc_head_run(&env, model, peers, PROMPT, n_predict, stats_path, extra);
    CHECKF(rc == 0, "%s: the head exited %d", what, rc);
    if (rc) {
        tc_head_log_print(&env);
        return -1;
    }
    CHECK(tc_read_stats(stats_path, st) == 0);
    CHECKF(st->n_stages == n_stages, "%s: %d stages, want %d", what, st->n_stages, n_stages);
    TC_CHECK_TOKENS(st, ref, n_ref, what);
    return 0;
}

/* x86-64 head (with layers), aarch64 node, Windows node: three stages, the
 * single-node tokens. */
static void run_three(const char *model, int n_predict, const char *what) {
    char peers[256];
    snprintf(peers, sizeof peers, "%s,%s", arm.addr, win.addr);
    const char *extra[] = {"--spread", "--head-layers", NULL};
    struct tc_stats st;
    if (run_ring(model, n_predict, peers, extra, 3, what, &st) == 0)
        printf("%s: %d tokens equal to the single-node run (%.1f tok/s)\n", what, st.n_tokens, st.tok_per_s);
}

/* Copies every stage file of from's cache into to's (cp from/stages/\* to/stages/). */
static int copy_stages(const struct tc_node *from, const struct tc_node *to) {
    char src_dir[300], dst_dir[300], src[700], dst[700], buf[1 << 16];
    snprintf(src_dir, sizeof src_dir, "%s/stages", from->cache);
    snprintf(dst_dir, sizeof dst_dir, "%s/stages", to->cache);
    DIR *d = opendir(src_dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".gguf")) continue;
        snprintf(src, sizeof src, "%s/%s", src_dir, de->d_name);
        snprintf(dst, sizeof dst, "%s/%s", dst_dir, de->d_name);
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        size_t got;
        while (in && out && (got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out);
        if (in) fclose(in);
        if (out && fclose(out) == 0) n++;
    }
    closedir(d);
    return n;
}

/* The two nodes, Windows one first: --spread gives it the first stage. */
static void run_pair(const char *model, int n_predict, const char *what, int want_cache) {
    char peers[256];
    snprintf(peers, sizeof peers, "%s,%s", win.addr, lin.addr);
    const char *spread[] = {"--spread", NULL};
    for (int pass = 0; pass < (want_cache ? 2 : 1); pass++) {
        struct tc_stats st;
        if (run_ring(model, n_predict, peers, spread, 2, what, &st)) return;
        if (pass == 1) {
            /* the Windows node (node 0) found its stage file in its cache */
            CHECKF(st.n_stages == 2 && st.node[0] == 0 && !strcmp(st.weights[0], "cache"),
                   "%s again: the Windows node's stage came from '%s', not its cache", what, st.weights[0]);
        }
        printf("%s%s: %d tokens equal to the single-node run (%.1f tok/s)\n", what, pass ? " (cached)" : "",
               st.n_tokens, st.tok_per_s);
    }
}

int main(void) {
    char model[512];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    tc_setup(&env);
    win_env = env;
    snprintf(win_env.bin, sizeof win_env.bin, "%s/hive.exe", HIVE_MINGW_BIN_DIR);
    win_env.emulator = HIVE_WINE;
    if (access(win_env.bin, R_OK) != 0 || access(HIVE_WINE, X_OK) != 0) {
        printf("SKIP: %s or %s missing (run scripts/cross/mingw.sh)\n", win_env.bin, HIVE_WINE);
        tc_cleanup(&env);
        return SKIP_CODE;
    }
    /* wine: quiet, and its own prefix beside the cross build (made once by
     * mingw.sh --test, else on the first start here) */
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/wineprefix", HIVE_MINGW_BIN_DIR);
    setenv("WINEPREFIX", prefix, 0);
    setenv("WINEDEBUG", "-all", 0);

    CHECK(tc_node_start(&win_env, &win, "win", NULL, NULL) == 0);
    CHECK(tc_node_start(&env, &lin, "linux", NULL, NULL) == 0);
    if (win.pid > 0 && lin.pid > 0) {
        run_pair(model, 40, "stories260K on a Windows and a Linux node", 1);
        /* Stage files move between operating systems: each node gets the
         * other's, the order is swapped, and both stages come from the
         * caches (a file written on Linux read on Windows and back). */
        CHECK(copy_stages(&win, &lin) >= 1 && copy_stages(&lin, &win) >= 1);
        char peers[256];
        snprintf(peers, sizeof peers, "%s,%s", lin.addr, win.addr);
        const char *spread[] = {"--spread", NULL};
        struct tc_stats st;
        memset(&st, 0, sizeof st);
        run_ring(model, 40, peers, spread, 2, "stories260K with the stage files swapped between the OSes", &st);
        for (int i = 0; i < st.n_stages; i++)
            CHECKF(!strcmp(st.weights[i], "cache"), "stage %d of the swapped run came from '%s'", i, st.weights[i]);
        CHECKF(st.weight_bytes_sent == 0, "the swapped run sent %llu weight bytes",
               (unsigned long long)st.weight_bytes_sent);
        char path[300], err[HIVE_ERR_LEN];
        snprintf(path, sizeof path, "%s/synth-llama-q4_0.gguf", env.dir);
        int rc = tc_mkmodel_small(path, "llama", "q4_0", 11, err);
        CHECKF(rc == HIVE_OK, "mkmodel: %s", err);
        if (!rc) run_pair(path, 24, "synthetic llama q4_0 on a Windows and a Linux node", 0);
    }
    /* The aarch64 node, when its cross build is there. */
    arm_env = env;
    snprintf(arm_env.bin, sizeof arm_env.bin, "%s/hive", HIVE_AARCH64_BIN_DIR);
    arm_env.emulator = HIVE_QEMU_AARCH64;
    if (access(arm_env.bin, R_OK) != 0 || access(HIVE_QEMU_AARCH64, X_OK) != 0) {
        printf("aarch64: %s or %s missing (run scripts/cross/aarch64.sh): no three-OS cluster\n", arm_env.bin,
               HIVE_QEMU_AARCH64);
    } else if (win.pid > 0) {
        setenv("QEMU_LD_PREFIX", "/", 1); /* the arm64 multiarch loader and libc (see cmake/aarch64-linux-gnu.cmake) */
        CHECK(tc_node_start(&arm_env, &arm, "arm", NULL, NULL) == 0);
        if (arm.pid > 0) {
            run_three(model, 24, "stories260K on x86-64, aarch64 and Windows");
            char path[300], err[HIVE_ERR_LEN];
            snprintf(path, sizeof path, "%s/synth-llama-q4_0.gguf", env.dir);
            if (access(path, R_OK) == 0 || tc_mkmodel_small(path, "llama", "q4_0", 11, err) == HIVE_OK)
                run_three(path, 16, "synthetic llama q4_0 on x86-64, aarch64 and Windows");
            CHECKF(tc_node_stop(&arm) == 0, "the aarch64 node did not exit cleanly");
        }
    }
    CHECKF(tc_node_alive(&win), "the Windows node died (log: %s)", win.log);
    CHECKF(tc_node_stop(&lin) == 0, "the Linux node did not exit cleanly");
    /* wine ends the Windows process on SIGTERM without console events: only
     * check that it goes */
    if (win.pid > 0) {
        kill(win.pid, SIGTERM);
        CHECKF(tc_wait(win.pid, 20000) >= 0, "the Windows node did not stop");
        win.pid = 0;
    }
    tc_cleanup(&env);
    return check_result("test_cross_win");
}
#endif
