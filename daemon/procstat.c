/* See procstat.h.  Field numbers are proc(5)'s for /proc/self/stat; the
 * start time is the boot time (btime in /proc/stat) plus the process's
 * starttime in clock ticks. */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static uint64_t boot_time_seconds(void) {
        FILE *f = fopen("/proc/stat", "re");
        char line[256];
        uint64_t btime = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "btime %" SCNu64, &btime) == 1)
                        break;
        fclose(f);
        return btime;
}

static uint64_t count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        uint64_t n = 0;

        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

int procstat_read(HealthProcess *ret) {
        HealthProcess p = { 0 };
        char buf[1024];
        FILE *f = fopen("/proc/self/stat", "re");

        if (!f)
                return -errno;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';

        /* comm (field 2) may hold spaces and parentheses: parse after the last ')' */
        const char *s = strrchr(buf, ')');
        unsigned long long utime, stime, starttime;
        long long rss;
        if (!s || sscanf(s + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %*u %lld",
                         &utime, &stime, &starttime, &rss) != 4)
                return -EBADMSG;

        long ticks = sysconf(_SC_CLK_TCK);
        long page = sysconf(_SC_PAGESIZE);
        if (ticks > 0) {
                p.cpu = (utime + stime) * USEC_PER_SEC / (uint64_t)ticks;
                uint64_t btime = boot_time_seconds();
                if (btime > 0)
                        p.start_time = btime * USEC_PER_SEC + starttime * USEC_PER_SEC / (uint64_t)ticks;
        }
        if (page > 0 && rss > 0)
                p.resident_memory_bytes = (uint64_t)rss * (uint64_t)page;
        p.open_fds = count_open_fds();
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
                p.max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
        *ret = p;
        return 0;
}
