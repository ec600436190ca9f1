/* ISO 8601 UTC times <-> seconds since the epoch (proleptic Gregorian, no leap seconds, as
 * miniSEED, ObsPy's UTCDateTime and SeisBench metadata use them). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sisma/core.h"

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

int sm_time_parse(const char *s, double *epoch) {
  int y, mo, d, h = 0, mi = 0, n = 0;
  double sec = 0;
  while (isspace((unsigned char)*s)) s++;
  if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3) return -1;
  s += n;
  if (*s == 'T' || *s == ' ') {
    s++;
    if (sscanf(s, "%2d:%2d:%lf%n", &h, &mi, &sec, &n) != 3) return -1;
    s += n;
  }
  if (*s == 'Z') s++;
  else if (!strncmp(s, "+00:00", 6)) s += 6;
  while (isspace((unsigned char)*s)) s++;
  if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61) return -1;
  *epoch = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
  return 0;
}

void sm_time_format(double t, char out[32]) {
  if (!isfinite(t)) {
    snprintf(out, 32, "NaT");
    return;
  }
  int64_t us = (int64_t)llround(t * 1e6);
  int64_t days = us >= 0 ? us / 86400000000LL : -((-us + 86400000000LL - 1) / 86400000000LL);
  int64_t rem = us - days * 86400000000LL;
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  int64_t s = rem / 1000000;
  snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60),
           (int)(rem % 1000000));
}
