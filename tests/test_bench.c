/* test_bench.c - `hive bench`: the engine figures on this machine (text and
 * the JSON line, as before), and the scheduler's runs, alone and across two
 * `hive node`s with 2 streams at once: --json holds every field and parses,
 * --plot is well-formed XML (python3's xml.etree), the breakdown names the
 * slowest stage and hop. */
#include "serve_util.h"

/* Runs hive bench with args; its stdout into <dir>/out.txt. Returns the exit status. */
static int bench(const struct tc_env *e, const char *const *args, char **out) {
    char *argv[48], path[256];
    int k = 0;
    argv[k++] = (char *)e->bin;
    argv[k++] = "bench";
    for (int i = 0; args[i] && k < 47; i++) argv[k++] = (char *)args[i];
    argv[k] = NULL;
    snprintf(path, sizeof path, "%s/out.txt", e->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, fd, -1);
    if (fd >= 0) close(fd);
    int st = tc_wait(pid, 300000);
    *out = check_read_file(path, NULL);
    return st;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    CHECKF(cJSON_IsNumber(v), "field %s", k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void check_json(const char *path, int runs, int conc, int n_stages, int n_decode, int engine) {
    char *text = check_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(j != NULL, "%s parses", path);
    if (!j) return;
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "model")) && cJSON_IsString(cJSON_GetObjectItem(j, "where")));
    CHECK(num(j, "runs") == runs && num(j, "concurrency") == conc && num(j, "n_decode") == n_decode);
    num(j, "n_prompt");
    num(j, "threads");
    const cJSON *e = cJSON_GetObjectItem(j, "engine");
    if (engine) CHECK(num(e, "prefill_tps") > 0 && num(e, "decode_tps") > 0 && num(e, "bytes_per_token") > 0);
    else CHECK(cJSON_IsNull(e));
    const cJSON *med = cJSON_GetObjectItem(j, "median");
    CHECK(num(med, "prompt_tps") > 0 && num(med, "gen_tps") > 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "stages")) == n_stages);
    const cJSON *r, *rs = cJSON_GetObjectItem(j, "run");
    CHECK(cJSON_GetArraySize(rs) == runs);
    cJSON_ArrayForEach(r, rs) {
        CHECK(num(r, "prompt_tps") > 0 && num(r, "gen_tps") > 0 && num(r, "wall_ms") > 0);
        CHECK(num(r, "generated") == conc * n_decode);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "ttft_ms")) == conc);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "compute_ms")) == n_stages);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "hop_in_ms")) == n_stages);
        CHECK(num(r, "hop_out_ms") >= 0);
        int s = (int)num(r, "slowest_stage");
        CHECK(s >= 0 && s < n_stages && num(r, "slowest_ms") > 0);
    }
    cJSON_Delete(j);
}

static void check_svg(const char *path) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
             "assert r.tag == \"{http://www.w3.org/2000/svg}svg\"; "
             "assert len(r.findall(\".//{http://www.w3.org/2000/svg}rect\")) > 2' %s",
             path);
    CHECKF(system(cmd) == 0, "%s is not a well-formed SVG", path);
}

int main(void) {
    char model[1024];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    struct tc_env e;
    tc_setup(&e);
    char json[256], svg[256], *out = NULL;
    snprintf(json, sizeof json, "%s/b.json", e.dir);
    snprintf(svg, sizeof svg, "%s/b.svg", e.dir);

    /* this machine: the engine and the scheduler */
    const char *local[] = {"-m", model, "-t", "1", "--prompt", "16", "--decode", "32", "-r", "3",
                           "--json", json, "--plot", svg, NULL};
    CHECK(bench(&e, local, &out) == 0);
    CHECK(out && strstr(out, "prefill 16 tok:") && strstr(out, "\"decode_tps\":"));
    CHECK(out && strstr(out, "median: prompt") && strstr(out, "slowest stage:"));
    free(out);
    check_json(json, 3, 1, 1, 32, 1);
    check_svg(svg);

    /* two nodes, two streams at once */
    struct tc_node nodes[2] = {0};
    CHECK(tc_node_start(&e, &nodes[0], "n1", NULL, NULL) == 0);
    CHECK(tc_node_start(&e, &nodes[1], "n2", NULL, NULL) == 0);
    if (!check_failures) {
        char peers[256];
        tc_peers(nodes, 2, peers, sizeof peers);
        unlink(json);
        unlink(svg);
        const char *cl[] = {"-m", model, "-t", "1", "--peers", peers, "--key", e.key, "--spread", "--prompt", "16",
                            "--decode", "24", "-r", "3", "--concurrency", "2", "--json", json, "--plot", svg, NULL};
        CHECK(bench(&e, cl, &out) == 0);
        CHECK(out && !strstr(out, "prefill 16 tok:")); /* no engine figures for a remote run */
        CHECK(out && strstr(out, "2 streams") && strstr(out, "slowest hop:"));
        if (out) printf("%s", out);
        free(out);
        check_json(json, 3, 2, 2, 24, 0);
        check_svg(svg);
    }
    for (int i = 0; i < 2; i++) CHECK(tc_node_stop(&nodes[i]) == 0);
    /* bad options are refused */
    const char *bad[] = {"--concurrency", "0", NULL};
    CHECK(bench(&e, bad, &out) != 0);
    free(out);
    tc_cleanup(&e);
    return check_result("test_bench");
}
