/* cli_fetch.c - what needs libcurl and hive's store (src/store): the
 * default model's download and -m NAME. A node-only build (no libcurl,
 * cJSON or store) takes cli_fetch_none.c instead. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/os.h"
#include "hive/store.h"

#define PATH_CAP 4096

int cli_store_dir(char *buf, size_t cap) { return hive_store_dir(buf, cap, NULL) == HIVE_OK ? 0 : -1; }

/* ---- download ---- */

struct download {
    FILE *f;
    int last_pct;
    int tty;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct download *d = userdata;
    return fwrite(ptr, size, nmemb, d->f); /* a short count makes libcurl abort with CURLE_WRITE_ERROR */
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    struct download *d = clientp;
    if (dltotal <= 0) return 0; /* size not known yet */
    int pct = (int)(dlnow * 100 / dltotal);
    if (pct == d->last_pct) return 0;
    d->last_pct = pct;
    if (d->tty) {
        int bar = pct / 4;
        fprintf(stderr, "\r  [%-25.*s] %3d%% %.1f/%.1f MiB", bar, "#########################", pct,
                (double)dlnow / (1 << 20), (double)dltotal / (1 << 20));
    } else if (pct % 25 == 0 && pct > 0) {
        fprintf(stderr, "  %d%%\n", pct);
    }
    return 0; /* nonzero would abort the transfer */
}

/* Downloads url to path via path.part; checks the result is GGUF. */
int cli_download(const char *url, const char *path) {
    char part[PATH_CAP + 8];
    snprintf(part, sizeof part, "%s.part", path);
    struct download d = {.f = fopen(part, "wb"), .last_pct = -1, .tty = isatty(STDERR_FILENO)};
    if (!d.f) {
        fprintf(stderr, "hive: cannot create %s: %s\n", part, strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fclose(d.f);
        remove(part);
        fprintf(stderr, "hive: libcurl failed to initialise\n");
        return 1;
    }
    CURL *curl = curl_easy_init();
    char curl_err[CURL_ERROR_SIZE] = "";
    CURLcode res = CURLE_FAILED_INIT;
    long status = 0;
    if (curl) {
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L); /* Hugging Face redirects to its CDN */
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);    /* HTTP >= 400 is an error, not a body */
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "hive/" HIVE_VERSION);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* give up when stalled for a minute */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
        res = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
    }
    curl_global_cleanup();
    if (d.tty && d.last_pct >= 0) fputc('\n', stderr);
    int closed = fclose(d.f);
    if (res != CURLE_OK || closed != 0) {
        if (res != CURLE_OK && status > 0)
            fprintf(stderr, "hive: download of %s failed: %s (HTTP %ld)\n", url, curl_err[0] ? curl_err : curl_easy_strerror(res), status);
        else if (res != CURLE_OK)
            fprintf(stderr, "hive: download of %s failed: %s\n", url, curl_err[0] ? curl_err : curl_easy_strerror(res));
        else
            fprintf(stderr, "hive: writing %s failed: %s\n", part, strerror(errno));
        remove(part);
        return 1;
    }
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open(&g, part, err) != HIVE_OK) {
        fprintf(stderr, "hive: the downloaded file is not a usable GGUF: %s\n", err);
        remove(part);
        return 1;
    }
    hive_gguf_close(g);
    if (hive_rename_replace(part, path) != 0) {
        fprintf(stderr, "hive: cannot rename %s to %s: %s\n", part, path, strerror(errno));
        remove(part);
        return 1;
    }
    return 0;
}

int cli_resolve_model(const char *name, char *path, size_t cap) {
    struct hive_model_ref r;
    char err[HIVE_ERR_LEN];
    if (hive_store_resolve(name, &r, err) != HIVE_OK) {
        fprintf(stderr, "hive: %s\n", err);
        return 1;
    }
    if (snprintf(path, cap, "%s", r.path) >= (int)cap) {
        fprintf(stderr, "hive: model path too long: %s\n", r.path);
        return 1;
    }
    return 0;
}

