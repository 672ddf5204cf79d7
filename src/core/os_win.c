/* os_win.c - include/hive/os.h on Windows (mingw-w64; also runs under wine).
 * Its twin for POSIX systems is os_posix.c.
 * References: the Win32 API documentation (CreateFileMapping, MapViewOfFile,
 * MoveFileEx, SetConsoleCtrlHandler, GetLogicalProcessorInformation). */
#define _CRT_RAND_S /* rand_s in stdlib.h */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <windows.h>
#include <psapi.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hive/core.h"
#include "hive/os.h"

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_rc = -1;

static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once, (void)param, (void)ctx;
    WSADATA d;
    wsa_rc = WSAStartup(MAKEWORD(2, 2), &d);
    return TRUE;
}

int hive_os_init(char *err) {
    InitOnceExecuteOnce(&wsa_once, wsa_start, NULL, NULL);
    if (wsa_rc != 0) return hive_errf(err, HIVE_ERR_IO, "WSAStartup failed (error %d)", wsa_rc);
    return HIVE_OK;
}

void hive_sleep_ms(int ms) { Sleep(ms > 0 ? (DWORD)ms : 0); }

/* A Win32 error as the nearest errno value, for strerror. */
static int errno_of(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION: return EACCES;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS: return EEXIST;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_DISK_FULL: return ENOSPC;
    default: return EIO;
    }
}

int hive_mkdir(const char *path) {
    if (CreateDirectoryA(path, NULL)) return 0;
    errno = errno_of(GetLastError());
    return -1;
}

int hive_rename_replace(const char *from, const char *to) {
    if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
    errno = errno_of(GetLastError());
    return -1;
}

int hive_is_regular_nofollow(const char *path) {
    DWORD a = GetFileAttributesA(path);
    return a != INVALID_FILE_ATTRIBUTES && !(a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT));
}

/* O_BINARY everywhere: text mode would turn \n into \r\n in weight files.
 * O_NOINHERIT is Windows' close-on-exec. */
int hive_open_read(const char *path) { return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT); }

int hive_open_new_private(const char *path) {
    return _open(path, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
}

int hive_open_rw_trunc(const char *path) {
    return _open(path, _O_RDWR | _O_CREAT | _O_TRUNC | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
}

int64_t hive_pwrite(int fd, const void *p, size_t n, uint64_t off) {
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD put = 0, want = n > 0x40000000u ? 0x40000000u : (DWORD)n;
    if (!WriteFile(h, p, want, &put, &ov)) {
        errno = errno_of(GetLastError());
        return -1;
    }
    return (int64_t)put;
}

int hive_fsync(int fd) { return _commit(fd); }

/* Fills the template's XXXXXX with random letters and calls make on it
 * until a name is free (make fails with EEXIST on a taken one). */
static int make_unique(char *template_path, int (*make)(const char *path)) {
    size_t n = strlen(template_path);
    if (n < 6 || strcmp(template_path + n - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return -1;
    }
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = hive_os_random64();
        for (int i = 0; i < 6; i++, r /= 36) template_path[n - 6 + i] = chars[r % 36];
        int rc = make(template_path);
        if (rc >= 0 || errno != EEXIST) return rc;
    }
    errno = EEXIST;
    return -1;
}

static int new_rw_file(const char *path) {
    return _open(path, _O_RDWR | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
}

int hive_mkstemp(char *template_path) { return make_unique(template_path, new_rw_file); }

char *hive_mkdtemp(char *template_path) { return make_unique(template_path, hive_mkdir) == 0 ? template_path : NULL; }

/* 100 ns ticks since 1601 -> ns since 1970 */
static int64_t unix_ns(FILETIME t) {
    uint64_t ticks = (uint64_t)t.dwHighDateTime << 32 | t.dwLowDateTime;
    return ((int64_t)ticks - 116444736000000000LL) * 100;
}

static int id_of_handle(HANDLE h, struct hive_file_id *id) {
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) {
        errno = errno_of(GetLastError());
        return -1;
    }
    id->dev = fi.dwVolumeSerialNumber;
    id->ino = (uint64_t)fi.nFileIndexHigh << 32 | fi.nFileIndexLow;
    id->size = (uint64_t)fi.nFileSizeHigh << 32 | fi.nFileSizeLow;
    id->mtime_ns = unix_ns(fi.ftLastWriteTime);
    id->is_dir = (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
    id->is_reg = !id->is_dir;
    return 0;
}

/* A handle for reading attributes only (directories too), sharing everything. */
static HANDLE open_attrs(const char *path, DWORD access) {
    return CreateFileA(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                       FILE_FLAG_BACKUP_SEMANTICS, NULL);
}

int hive_file_id(const char *path, struct hive_file_id *id) {
    HANDLE h = open_attrs(path, FILE_READ_ATTRIBUTES);
    if (h == INVALID_HANDLE_VALUE) {
        errno = errno_of(GetLastError());
        return -1;
    }
    int rc = id_of_handle(h, id);
    CloseHandle(h);
    return rc;
}

int hive_fd_file_id(int fd, struct hive_file_id *id) {
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) {
        errno = EBADF;
        return -1;
    }
    return id_of_handle(h, id);
}

int hive_touch(const char *path) {
    HANDLE h = open_attrs(path, FILE_WRITE_ATTRIBUTES);
    if (h == INVALID_HANDLE_VALUE) {
        errno = errno_of(GetLastError());
        return -1;
    }
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    BOOL ok = SetFileTime(h, NULL, NULL, &now);
    CloseHandle(h);
    return ok ? 0 : -1;
}

int hive_link_file(const char *from, const char *to) {
    if (CreateHardLinkA(to, from, NULL)) return 0;
    errno = errno_of(GetLastError());
    return -1;
}

int hive_fd_readable_by_others(int fd) {
    (void)fd;
    return 0;
}

int hive_realpath(const char *path, char *buf, size_t cap) {
    DWORD n = GetFullPathNameA(path, (DWORD)cap, buf, NULL);
    if (n == 0 || n >= cap) return -1;
    for (char *c = buf; *c; c++)
        if (*c == '\\') *c = '/';
    return 0;
}

int hive_os_pid(void) { return (int)GetCurrentProcessId(); }

int hive_cpu_count(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors > 0 ? (int)si.dwNumberOfProcessors : 1;
}

void *hive_malloc_aligned(size_t n_bytes) { return _aligned_malloc(n_bytes ? n_bytes : 64, 64); }

void hive_free_aligned(void *p) { _aligned_free(p); }

/* ---- memory mappings ---- */

int hive_map_file(const char *path, const void **base, uint64_t *size, char *err) {
    *base = NULL;
    *size = 0;
    DWORD attrs = GetFileAttributesA(path);
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
        return hive_errf(err, HIVE_ERR_IO, "%s: not a regular file", path);
    /* FILE_SHARE_WRITE: the file may be open for writing here (a stage
     * being received is mapped to be read back) */
    HANDLE f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return hive_errf(err, HIVE_ERR_IO, "%s: cannot open: %s (error %lu)", path, strerror(errno_of(e)),
                         (unsigned long)e);
    }
    LARGE_INTEGER sz;
    if (!GetFileSizeEx(f, &sz)) {
        DWORD e = GetLastError();
        CloseHandle(f);
        return hive_errf(err, HIVE_ERR_IO, "%s: cannot get the size (error %lu)", path, (unsigned long)e);
    }
    if (sz.QuadPart == 0) { /* a view of 0 bytes cannot be mapped */
        CloseHandle(f);
        return HIVE_OK;
    }
    HANDLE m = CreateFileMappingA(f, NULL, PAGE_READONLY, 0, 0, NULL);
    CloseHandle(f); /* the mapping keeps the file open */
    if (!m) return hive_errf(err, HIVE_ERR_IO, "%s: cannot map (error %lu)", path, (unsigned long)GetLastError());
    void *p = MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0);
    DWORD e = GetLastError();
    CloseHandle(m); /* the view keeps the mapping */
    if (!p) return hive_errf(err, HIVE_ERR_IO, "%s: cannot map (error %lu)", path, (unsigned long)e);
    *base = p;
    *size = (uint64_t)sz.QuadPart;
    return HIVE_OK;
}

void hive_unmap_file(const void *base, uint64_t size) {
    (void)size;
    if (base) UnmapViewOfFile(base);
}

void *hive_map_anon(size_t n, int flags) {
    (void)flags; /* large pages need a privilege ordinary users lack */
    return VirtualAlloc(NULL, n ? n : 1, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

void hive_unmap_anon(void *p, size_t n) {
    (void)n;
    if (p) VirtualFree(p, 0, MEM_RELEASE);
}

void hive_mem_discard(void *p, size_t n) {
    /* MEM_RESET: the pages' contents are no longer needed (no zeroing). */
    size_t page = hive_page_size();
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (b > a) VirtualAlloc((void *)a, b - a, MEM_RESET, PAGE_READWRITE);
}

size_t hive_page_size(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize ? si.dwPageSize : 4096;
}

/* ---- facts about the machine ---- */

void hive_os_name(char *buf, size_t cap) {
    /* GetVersionEx lies to unmanifested programs; RtlGetVersion does not. */
    typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
    OSVERSIONINFOW v;
    memset(&v, 0, sizeof v);
    v.dwOSVersionInfoSize = sizeof v;
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    FARPROC fp = ntdll ? GetProcAddress(ntdll, "RtlGetVersion") : NULL;
    rtl_get_version_fn get = NULL;
    if (fp) memcpy(&get, &fp, sizeof get);
    if (get && get(&v) == 0)
        snprintf(buf, cap, "Windows %lu.%lu x86_64", (unsigned long)v.dwMajorVersion, (unsigned long)v.dwMinorVersion);
    else
        snprintf(buf, cap, "Windows x86_64");
}

uint64_t hive_os_mem_available(void) {
    MEMORYSTATUSEX ms;
    memset(&ms, 0, sizeof ms);
    ms.dwLength = sizeof ms;
    if (!GlobalMemoryStatusEx(&ms)) return 0;
    uint64_t avail = ms.ullAvailPhys;
    if (ms.ullAvailPageFile && ms.ullAvailPageFile < avail) avail = ms.ullAvailPageFile; /* commit room */
    return avail;
}

uint64_t hive_rss_bytes(void) {
    PROCESS_MEMORY_COUNTERS pmc;
    memset(&pmc, 0, sizeof pmc);
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return 0;
    return (uint64_t)pmc.WorkingSetSize;
}

int hive_host_name(char *buf, size_t cap) {
    DWORD n = (DWORD)cap;
    if (cap == 0 || !GetComputerNameA(buf, &n)) return -1;
    return 0;
}

uint64_t hive_llc_bytes(void) {
    DWORD len = 0;
    GetLogicalProcessorInformation(NULL, &len);
    if (len == 0) return 0;
    SYSTEM_LOGICAL_PROCESSOR_INFORMATION *info = malloc(len);
    if (!info) return 0;
    uint64_t best = 0;
    int best_level = 0;
    if (GetLogicalProcessorInformation(info, &len)) {
        for (size_t i = 0; i < len / sizeof *info; i++) {
            if (info[i].Relationship != RelationCache) continue;
            const CACHE_DESCRIPTOR *c = &info[i].Cache;
            if (c->Level > best_level && c->Level <= 3) {
                best_level = c->Level;
                best = c->Size;
            }
        }
    }
    free(info);
    return best;
}

static int env_base(const char *var, char *buf, size_t cap) {
    const char *v = getenv(var);
    if (!v || !*v) return -1;
    int n = snprintf(buf, cap, "%s", v);
    if (n <= 0 || (size_t)n >= cap) return -1;
    for (char *c = buf; *c; c++) /* one separator everywhere: paths are joined with '/' */
        if (*c == '\\') *c = '/';
    return 0;
}

int hive_user_cache_base(char *buf, size_t cap) { return env_base("LOCALAPPDATA", buf, cap); }
int hive_user_config_base(char *buf, size_t cap) { return env_base("APPDATA", buf, cap); }

void hive_temp_dir(char *buf, size_t cap) {
    char tmp[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof tmp, tmp);
    if (n == 0 || n > MAX_PATH) {
        snprintf(buf, cap, ".");
        return;
    }
    while (n > 1 && (tmp[n - 1] == '\\' || tmp[n - 1] == '/')) tmp[--n] = 0;
    for (char *c = tmp; *c; c++)
        if (*c == '\\') *c = '/';
    snprintf(buf, cap, "%s", tmp);
}

/* ---- a machine-wide turn: a named mutex in the global namespace ---- */

#define LOCK_SLOTS 8
static HANDLE lock_handles[LOCK_SLOTS];

int hive_machine_lock(const char *name, int wait_ms) {
    char full[256];
    snprintf(full, sizeof full, "Global\\%s", name);
    HANDLE m = CreateMutexA(NULL, FALSE, full);
    if (!m) m = CreateMutexA(NULL, FALSE, name); /* no right to the global namespace */
    if (!m) return -1;
    DWORD w = WaitForSingleObject(m, wait_ms < 0 ? INFINITE : (DWORD)wait_ms);
    if (w != WAIT_OBJECT_0 && w != WAIT_ABANDONED) {
        CloseHandle(m);
        return -1;
    }
    for (int i = 0; i < LOCK_SLOTS; i++) {
        if (InterlockedCompareExchangePointer(&lock_handles[i], m, NULL) == NULL) return i;
    }
    ReleaseMutex(m);
    CloseHandle(m);
    return -1;
}

void hive_machine_unlock(int handle) {
    if (handle < 0 || handle >= LOCK_SLOTS) return;
    HANDLE m = InterlockedExchangePointer(&lock_handles[handle], NULL);
    if (!m) return;
    ReleaseMutex(m);
    CloseHandle(m);
}

/* ---- stopping: console control events stand for the signals ---- */

static void (*volatile stop_fn)(int);
static HANDLE stop_event; /* set by the handler for hive_stop_wait */
static volatile LONG stop_sig;

static BOOL WINAPI on_console_event(DWORD type) {
    int sig = type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT ? 2 : 15;
    void (*fn)(int) = stop_fn;
    if (fn) {
        stop_fn = NULL; /* a second Ctrl-C kills as usual */
        fn(sig);
        return TRUE;
    }
    if (stop_event) {
        InterlockedExchange(&stop_sig, sig);
        SetEvent(stop_event);
        /* After a close, logoff or shutdown event Windows ends the process
         * as soon as this returns (or after 5-20 s): hold it so that the
         * main thread can hand the layers off; its exit ends us anyway. */
        if (sig == 15) Sleep(20000);
        return TRUE;
    }
    return FALSE;
}

void hive_on_stop(void (*fn)(int sig)) {
    stop_fn = fn;
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

void hive_stop_block(void) {
    if (!stop_event) stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

int hive_stop_wait(void) {
    if (!stop_event) hive_stop_block();
    WaitForSingleObject(stop_event, INFINITE);
    return (int)stop_sig;
}

uint64_t hive_os_random64(void) {
    /* rand_s asks the OS's generator (RtlGenRandom) */
    unsigned int a = 0, b = 0;
    if (rand_s(&a) != 0 || rand_s(&b) != 0) return hive_now_us() ^ ((uint64_t)GetCurrentProcessId() << 16);
    return (uint64_t)a << 32 | b;
}
