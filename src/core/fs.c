/* Directory creation for outputs (mkdir -p). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sisma/core.h"

sm_status sm_make_dirs(sm_ctx *ctx, const char *dir) {
  char tmp[4096];
  SM_CHECK(ctx, strlen(dir) < sizeof tmp, SM_ERR_ARG, "directory name too long: %s", dir);
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(tmp, 0777); /* intermediate levels: the final check reports any failure */
      *p = '/';
    }
  struct stat sb;
  SM_CHECK(ctx, (mkdir(tmp, 0777) == 0 || errno == EEXIST) && stat(tmp, &sb) == 0 && S_ISDIR(sb.st_mode), SM_ERR_IO,
           "cannot create directory %s: %s", dir, strerror(errno));
  return SM_OK;
}

sm_status sm_make_parent_dirs(sm_ctx *ctx, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return SM_OK;
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  return sm_make_dirs(ctx, dir);
}
