/* os_posix.c - include/hive/os.h on Linux and other POSIX systems.
 * Its twin for Windows is os_win.c; nothing else calls the OS for these. */
#include "hive/os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "hive/core.h"

int hive_os_init(char *err) {
    (void)err;
    signal(SIGPIPE, SIG_IGN);
    return HIVE_OK;
}

void hive_sleep_ms(int ms) {
    if (ms <= 0) {
        sched_yield();
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int hive_mkdir(const char *path) { return mkdir(path, 0700); }

int hive_rename_replace(const char *from, const char *to) { return rename(from, to); }

int hive_is_regular_nofollow(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int hive_open_read(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }

int hive_open_new_private(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    /* the umask may have taken bits away, never added: make it exact */
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    return fd;
}

int hive_open_rw_trunc(const char *path) { return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); }

int64_t hive_pwrite(int fd, const void *p, size_t n, uint64_t off) {
    for (;;) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        return w;
    }
}

int hive_fsync(int fd) { return fsync(fd); }

int hive_link_file(const char *from, const char *to) { return link(from, to); }

int hive_mkstemp(char *template_path) {
    int fd = mkstemp(template_path);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

char *hive_mkdtemp(char *template_path) { return mkdtemp(template_path); }

static void id_of(const struct stat *st, struct hive_file_id *id) {
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (uint64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    id->is_dir = S_ISDIR(st->st_mode);
    id->is_reg = S_ISREG(st->st_mode);
}

int hive_file_id(const char *path, struct hive_file_id *id) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    id_of(&st, id);
    return 0;
}

int hive_fd_file_id(int fd, struct hive_file_id *id) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    id_of(&st, id);
    return 0;
}

int hive_touch(const char *path) { return utimensat(AT_FDCWD, path, NULL, 0); }

int hive_fd_readable_by_others(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && (st.st_mode & 077);
}

int hive_realpath(const char *path, char *buf, size_t cap) {
    char *abs = realpath(path, NULL);
    if (!abs) return -1;
    int ok = strlen(abs) < cap;
    if (ok) memcpy(buf, abs, strlen(abs) + 1);
    free(abs);
    return ok ? 0 : -1;
}

int hive_os_pid(void) { return (int)getpid(); }

int hive_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void *hive_malloc_aligned(size_t n_bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n_bytes ? n_bytes : 64)) return NULL;
    return p;
}

void hive_free_aligned(void *p) { free(p); }

/* ---- memory mappings ---- */

int hive_map_file(const char *path, const void **base, uint64_t *size, char *err) {
    *base = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hive_errf(err, HIVE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { /* mmap refuses length 0 */
        close(fd);
        return HIVE_OK;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "%s: too large to map on this system", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return hive_errf(err, HIVE_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
    *base = p;
    *size = (uint64_t)st.st_size;
    return HIVE_OK;
}

void hive_unmap_file(const void *base, uint64_t size) {
    if (base && size) munmap((void *)base, (size_t)size);
}

void *hive_map_anon(size_t n, int flags) {
    int mflags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_NORESERVE
    if (flags & HIVE_MAP_NORESERVE) mflags |= MAP_NORESERVE;
#endif
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, mflags, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (flags & HIVE_MAP_HUGE) madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

void hive_unmap_anon(void *p, size_t n) {
    if (p) munmap(p, n ? n : 1);
}

void hive_mem_discard(void *p, size_t n) {
    size_t page = hive_page_size();
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

size_t hive_page_size(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

/* ---- facts about the machine ---- */

void hive_os_name(char *buf, size_t cap) {
    struct utsname u;
    if (uname(&u) != 0) {
        snprintf(buf, cap, "unknown");
        return;
    }
    snprintf(buf, cap, "%s %s %s", u.sysname, u.release, u.machine);
}

uint64_t hive_os_mem_available(void) { return 0; }

uint64_t hive_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return n == 2 ? (uint64_t)res * (uint64_t)hive_page_size() : 0;
}

int hive_host_name(char *buf, size_t cap) {
    if (cap == 0 || gethostname(buf, cap - 1) != 0) return -1;
    buf[cap - 1] = 0;
    return 0;
}

uint64_t hive_llc_bytes(void) {
    long n = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    n = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (n <= 0) n = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return n > 0 ? (uint64_t)n : 0;
}

/* $XDG_<kind> if set, else ~/<fallback>. */
static int xdg_base(const char *var, const char *fallback, char *buf, size_t cap) {
    const char *xdg = getenv(var);
    const char *home = getenv("HOME");
    int n;
    if (xdg && *xdg == '/') n = snprintf(buf, cap, "%s", xdg); /* relative: ignored, as the XDG spec says */
    else if (home && *home) n = snprintf(buf, cap, "%s/%s", home, fallback);
    else return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int hive_user_cache_base(char *buf, size_t cap) { return xdg_base("XDG_CACHE_HOME", ".cache", buf, cap); }
int hive_user_config_base(char *buf, size_t cap) { return xdg_base("XDG_CONFIG_HOME", ".config", buf, cap); }

void hive_temp_dir(char *buf, size_t cap) { snprintf(buf, cap, "/tmp"); }

/* ---- a machine-wide turn ----
 * flock on a file opened read-only (so every user's processes share it),
 * never through a symlink. */
int hive_machine_lock(const char *name, int wait_ms) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/%s", name);
    int fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    for (int waited = 0; waited < wait_ms; waited += 10) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        hive_sleep_ms(10);
    }
    close(fd);
    return -1;
}

void hive_machine_unlock(int handle) {
    if (handle >= 0) close(handle); /* releases the lock */
}

/* ---- stopping ---- */

static void (*stop_fn)(int);

static void on_stop_signal(int sig) {
    if (stop_fn) stop_fn(sig == SIGINT ? 2 : 15);
}

void hive_on_stop(void (*fn)(int sig)) {
    stop_fn = fn;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn ? on_stop_signal : SIG_DFL;
    sa.sa_flags = (int)SA_RESETHAND; /* a second Ctrl-C kills as usual */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static sigset_t stop_set(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

void hive_stop_block(void) {
    sigset_t set = stop_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int hive_stop_wait(void) {
    sigset_t set = stop_set();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig == SIGINT ? 2 : 15;
}

uint64_t hive_os_random64(void) {
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        v = hive_now_us() ^ ((uint64_t)getpid() << 16); /* no /dev/urandom: good enough for a seed */
    if (fd >= 0) close(fd);
    return v;
}
