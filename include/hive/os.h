/* os.h - the operating system's side of hive, one door for every module.
 *
 * The rest of the code is written once against this header (and net.h for
 * sockets); the OS calls live in src/core/os_posix.c (Linux, other Unixes)
 * and src/core/os_win.c (Windows, built with mingw-w64), and nowhere else.
 * Both implement every function here with the same contract.
 *
 * Errors: functions that return -1 leave the reason in errno (Windows
 * errors are translated), so callers can keep writing strerror(errno). */
#ifndef HIVE_OS_H
#define HIVE_OS_H

#include <stddef.h>
#include <stdint.h>

/* Once per process, before any socket: WSAStartup on Windows; on POSIX,
 * SIGPIPE is ignored (sends use MSG_NOSIGNAL anyway; this covers writes to
 * pipes). Idempotent and thread-safe. HIVE_OK or HIVE_ERR_IO. */
int hive_os_init(char *err);

/* This process's id (for log lines and unique temporary names). */
int hive_os_pid(void);

/* Sleeps at least ms milliseconds (ms <= 0: yields). */
void hive_sleep_ms(int ms);

/* Creates one directory, private to the user where the OS has modes (0700).
 * 0, or -1 with errno (EEXIST when it exists). */
int hive_mkdir(const char *path);

/* Renames from to to, replacing to if it exists (atomic on POSIX; on
 * Windows MoveFileEx with MOVEFILE_REPLACE_EXISTING). 0 or -1 with errno. */
int hive_rename_replace(const char *from, const char *to);

/* Whether path names a regular file, not following a symbolic link. */
int hive_is_regular_nofollow(const char *path);

/* Opens an existing file for reading (binary, close-on-exec). fd or -1. */
int hive_open_read(const char *path);
/* Creates a new file for writing, failing when it exists (binary,
 * close-on-exec, mode 0600 where the OS has modes). fd or -1. */
int hive_open_new_private(const char *path);
/* Opens or creates a file for reading and writing (binary, close-on-exec,
 * mode 0600, truncated). fd or -1. */
int hive_open_rw_trunc(const char *path);
/* Writes n bytes at offset off without moving the file position (pwrite).
 * Bytes written, or -1 with errno. */
int64_t hive_pwrite(int fd, const void *p, size_t n, uint64_t off);
/* A second name to for the file from, failing with EEXIST when to exists
 * (link(); CreateHardLink on Windows). 0 or -1 with errno. */
int hive_link_file(const char *from, const char *to);
/* Whether others than the owner may read the open file (mode & 077 on
 * POSIX; 0 on Windows, where ACLs decide and the profile is private). */
int hive_fd_readable_by_others(int fd);
/* Creates a new unique file from a template ending in XXXXXX (mkstemp),
 * opened for reading and writing, binary, mode 0600. fd or -1. */
int hive_mkstemp(char *template_path);
/* Creates a new private directory from a template ending in XXXXXX
 * (mkdtemp). Returns template_path, or NULL with errno. */
char *hive_mkdtemp(char *template_path);
/* A file's identity: a changed file (rewritten, replaced) gets another. */
struct hive_file_id {
    uint64_t dev, ino; /* device and inode (volume serial and file index on Windows) */
    uint64_t size;
    int64_t mtime_ns; /* last modification, ns since 1970 */
    int is_dir, is_reg;
};
/* 0, or -1 with errno. */
int hive_file_id(const char *path, struct hive_file_id *id);
int hive_fd_file_id(int fd, struct hive_file_id *id);
/* Sets a file's modification time to now. 0 or -1. */
int hive_touch(const char *path);
/* Flushes a file's data to disk. 0 or -1. */
int hive_fsync(int fd);
/* The absolute, canonical form of path into buf; -1 when it cannot. */
int hive_realpath(const char *path, char *buf, size_t cap);

/* ---- memory mappings ---- */
/* Maps a whole file read-only. A file of 0 bytes gives *base NULL and
 * *size 0 (HIVE_OK). HIVE_ERR_IO (with the reason in err) otherwise. The
 * mapping outlives any descriptor: unmap it with hive_unmap_file. */
int hive_map_file(const char *path, const void **base, uint64_t *size, char *err);
void hive_unmap_file(const void *base, uint64_t size);
/* Anonymous zeroed read-write memory of n bytes (pages, never touched until
 * used). flags: HIVE_MAP_HUGE asks for transparent huge pages where the OS
 * has them; HIVE_MAP_NORESERVE reserves no swap for it (MAP_NORESERVE; on
 * Windows the memory is committed either way). NULL on failure. */
#define HIVE_MAP_HUGE 1
#define HIVE_MAP_NORESERVE 2
void *hive_map_anon(size_t n, int flags);
void hive_unmap_anon(void *p, size_t n);
/* Tells the OS the pages of [p, p+n) (whole pages inside it) are not needed
 * any more: their memory goes back, reading them later gives zeros on POSIX
 * or the old contents on Windows (best effort, for memory accounting only). */
void hive_mem_discard(void *p, size_t n);
size_t hive_page_size(void);

/* ---- facts about the machine ---- */
/* "Linux 6.1.0 x86_64", "Windows 10.0 x86_64", ... */
void hive_os_name(char *buf, size_t cap);
/* Memory this process may still take, where the OS says it directly
 * (Windows: the available physical memory, capped by the commit room); 0
 * where /proc/meminfo and the cgroup files say it (src/core/mem.c). */
uint64_t hive_os_mem_available(void);
/* This process's resident memory in bytes (RSS; the working set on
 * Windows), 0 when unknown. */
uint64_t hive_rss_bytes(void);
/* This machine's host name into buf (NUL-terminated); -1 when unknown. */
int hive_host_name(char *buf, size_t cap);
/* Last-level cache size in bytes (L3, else L2), 0 when unknown. */
uint64_t hive_llc_bytes(void);
/* The per-user directory for caches: $XDG_CACHE_HOME or ~/.cache on POSIX,
 * %LOCALAPPDATA% on Windows (no trailing separator). -1 when unknown. */
int hive_user_cache_base(char *buf, size_t cap);
/* The per-user directory for settings: $XDG_CONFIG_HOME or ~/.config on
 * POSIX, %APPDATA% on Windows. -1 when unknown. */
int hive_user_config_base(char *buf, size_t cap);
/* The directory for temporary files shared by the machine's users: /tmp,
 * or GetTempPath on Windows. */
void hive_temp_dir(char *buf, size_t cap);

/* ---- a machine-wide turn ----
 * A lock that one process at a time holds, named by a file in
 * hive_temp_dir(). hive_machine_lock waits up to wait_ms and returns a
 * handle >= 0, or -1 when it was not taken; hive_machine_unlock(handle)
 * releases it (exit releases it too). */
int hive_machine_lock(const char *name, int wait_ms);
void hive_machine_unlock(int handle);

/* ---- stopping ----
 * Calls fn(sig) on an interrupt (SIGINT / Ctrl-C: sig 2) or a request to
 * stop (SIGTERM, or a console close / logoff / shutdown event on Windows:
 * sig 15). fn must only set flags or call async-safe functions; on Windows
 * it runs on a thread the OS creates. fn NULL restores the defaults. */
void hive_on_stop(void (*fn)(int sig));
/* The synchronous way, for a daemon's main thread: hive_stop_block() before
 * any thread starts (POSIX: SIGINT and SIGTERM are blocked in every thread),
 * then hive_stop_wait() returns 2 or 15 when one arrives. */
void hive_stop_block(void);
int hive_stop_wait(void);

/* A random 64-bit value from the OS (for seeds, not for keys). */
uint64_t hive_os_random64(void);

#endif
