#!/usr/bin/env Rscript
# Golden files for the held-out split of `sisma lm` (tests/stats/test_stats_cli.sh): reg.csv with
# a split column (events ev01-ev12 train, ev13-ev15 dev, ev16-ev20 test), R's summary of the fit
# on the train rows and the prediction errors on the test and dev rows (full precision); and a
# poly() term with rows in no split ("other": R evaluates poly() on every row before subset).
# Run from the repository root after dev/golden_stats.R:
#   LC_ALL=C.UTF-8 Rscript dev/golden_lm_split.R
out <- "tests/stats/golden"
options(width = 80)
reg <- read.csv(file.path(out, "reg.csv"))
ev <- as.integer(sub("ev", "", reg$event))
reg$split <- ifelse(ev <= 12, "train", ifelse(ev <= 15, "dev", "test"))
write.csv(reg, file.path(out, "reg_split.csv"), row.names = FALSE)
reg_split <- read.csv(file.path(out, "reg_split.csv"))
fit <- lm(y ~ x1 + x2, data = reg_split, subset = split == "train")
writeLines(capture.output(print(summary(fit))), file.path(out, "lm_split.txt"))
score <- function(part) {
  d <- na.omit(reg_split[reg_split$split == part, c("y", "x1", "x2")])
  e <- d$y - predict(fit, newdata = d)
  c(n = nrow(d), rmse = sqrt(mean(e^2)), mae = mean(abs(e)), mean_error = mean(e),
    r_squared = 1 - sum(e^2) / sum((d$y - mean(d$y))^2))
}
v <- c(test = score("test"), dev = score("dev"))
write.table(data.frame(name = names(v), value = sprintf("%.17g", unname(v))), file.path(out, "lm_split.num"),
            sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
reg_other <- reg_split
reg_other$split[reg_other$event %in% c("ev19", "ev20")] <- "other"
write.csv(reg_other, file.path(out, "reg_other.csv"), row.names = FALSE)
reg_other <- read.csv(file.path(out, "reg_other.csv"))
fit <- lm(y ~ poly(x1, 2) + x2, data = reg_other, subset = split == "train")
writeLines(capture.output(print(summary(fit))), file.path(out, "lm_split_poly.txt"))
