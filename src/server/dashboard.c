/* dashboard.c - the dashboard's files (web/index.html, app.js, style.css),
 * embedded into the binary at build time by web/embed.cmake: nothing is
 * read from disk or fetched from the network at run time. The page itself
 * holds no data; it reads GET /v1/hive/cluster once a second. */
#include <string.h>

#include "srv.h"

const struct srv_asset *srv_asset_find(const char *url) {
    if (!strcmp(url, "/") || !strcmp(url, "/index.html") || !strcmp(url, "/dashboard")) url = "/index.html";
    for (int i = 0; i < srv_n_assets; i++)
        if (!strcmp(url, srv_assets[i].path)) return &srv_assets[i];
    return NULL;
}
