/* A small CSV table reader (private to sisma): a header row naming the columns, then one record
 * per row, RFC 4180 quoting (fields in double quotes may hold commas, newlines and doubled quotes
 * ""), LF or CRLF line ends, an optional UTF-8 byte-order mark. The whole file is parsed into one
 * arena; values are borrowed NUL-terminated strings.
 *
 * Missing values: an empty field (quoted or not). Typed access: a column is numeric when every
 * non-missing value parses completely as a number (strtod; surrounding blanks allowed), where the
 * Python spellings "None", "nan" and "NaN" also count as missing in numeric columns only (STEAD
 * and pandas write them); otherwise it is a string column and values are returned verbatim.
 *
 * Errors name the file, the line (1-based, physical line of the input) and the column (1-based
 * field number and header name): a row with the wrong number of fields (e.g. a truncated last
 * row), an unterminated quoted field, a quote inside an unquoted field, text after a closing
 * quote, duplicate or empty header names. Fully empty lines are skipped.
 *
 * Splitting a file by bytes (the sharded table reader, src/table/table_csv.c): under this quoting
 * a '"' count that is even means "outside a quoted field", so a record starts after every '\n'
 * preceded by an even number of quotes (counted from the header's end). sm__csv_header_end,
 * sm__csv_record_end and sm__csv_count find those places without parsing; sm__csv_create_part
 * parses the header and one run of whole records that starts at a known line of the file.
 * Start reading at sm__csv_create. All functions are local (no MPI). */
#ifndef SISMA_IO_CSV_H
#define SISMA_IO_CSV_H

#include "sisma/core.h"

typedef struct sm_csv sm_csv;

/* Parse the CSV file at path. On failure records SM_ERR_IO (cannot read) or SM_ERR_FORMAT
 * ("path:line:column: why") and returns it; *out is NULL then. Local. */
sm_status sm__csv_create(sm_ctx *ctx, const char *path, sm_csv **out);
/* Parse CSV text held in memory (len bytes); `name` is used in messages. Local. */
sm_status sm__csv_create_text(sm_ctx *ctx, const char *name, const char *text, size_t len, sm_csv **out);
/* Parse the header held in head[0, hlen) (the file's first bytes: byte-order mark, empty lines,
 * the header record) and the whole records of data[0, dlen), the first of which starts at
 * physical line `line` of the file; messages name `name` and the lines of the file, exactly as
 * a parse of the whole file would. data may be NULL when dlen is 0 (no rows). Local. */
sm_status sm__csv_create_part(sm_ctx *ctx, const char *name, const char *head, size_t hlen, const char *data,
                              size_t dlen, int64_t line, sm_csv **out);
/* Free; sets *csv = NULL; accepts NULL. */
void sm__csv_destroy(sm_csv **csv);

const char *sm__csv_path(const sm_csv *csv);
int64_t sm__csv_rows(const sm_csv *csv); /* data rows (header excluded) */
int sm__csv_cols(const sm_csv *csv);
const char *sm__csv_col_name(const sm_csv *csv, int col);
/* Column index of `name`, or -1. */
int sm__csv_col_find(const sm_csv *csv, const char *name);
/* Column index of `name`; SM_ERR_FORMAT naming the file and near matches if absent. */
sm_status sm__csv_col_require(sm_ctx *ctx, const sm_csv *csv, const char *name, int *col);
/* Physical line (1-based) where data row `row` (0-based) starts. */
int64_t sm__csv_line(const sm_csv *csv, int64_t row);

/* Value of (row, col) as text, "" when missing (borrowed). */
const char *sm__csv_str(const sm_csv *csv, int64_t row, int col);
int sm__csv_missing(const sm_csv *csv, int64_t row, int col);
/* 1 if the column is numeric (see above); a column with no values at all is not numeric. */
int sm__csv_is_numeric(const sm_csv *csv, int col);
/* Value of (row, col) as a number: NaN when missing or when it does not parse. */
double sm__csv_f64(const sm_csv *csv, int64_t row, int col);
/* Longest value of a column in bytes (at least 1). */
int sm__csv_max_len(const sm_csv *csv, int col);

/* Offset just past the header's line end in text[0, len) (the first bytes of a file): past the
 * byte-order mark and empty lines, the first '\n' preceded by an even number of '"'; 0 if text
 * holds none (read more, or the file is all header). Local. */
size_t sm__csv_header_end(const char *text, size_t len);
/* Offset just past the first '\n' of text[0, len) preceded by an even number of '"', counting
 * *quotes seen before text: where the next record starts. 0 if there is none. *quotes advances
 * by the quotes passed (all of text's when 0 is returned). Local. */
size_t sm__csv_record_end(const char *text, size_t len, int64_t *quotes);
/* Add the '"' and '\n' bytes of text[0, len) to *quotes and *newlines. Local. */
void sm__csv_count(const char *text, size_t len, int64_t *quotes, int64_t *newlines);

/* Parse a whole string as a number (blanks around allowed). Returns 1 on success. */
int sm__csv_parse_f64(const char *s, double *v);

#endif
