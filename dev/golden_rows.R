#!/usr/bin/env Rscript
# Golden files for the HDF5 results of `sisma lm` and `sisma glm` (tests/stats/test_stats_h5.sh):
# the coefficient table at full precision and the per-row values of /rows, one line per table
# row in table order, NA where sisma writes NaN. Reads the tables dev/golden_stats.R and
# dev/golden_lm_split.R wrote; writes only new files. Run from the repository root:
#   LC_ALL=C.UTF-8 Rscript dev/golden_rows.R
out <- "tests/stats/golden"
f17 <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
write_num <- function(d, name) {
  for (j in seq_along(d)) if (is.numeric(d[[j]])) d[[j]] <- f17(d[[j]])
  write.table(d, file.path(out, name), sep = ",", row.names = FALSE, quote = FALSE)
}

# coefficients: estimate, std_error, statistic, p_value and the interval (confint for lm, the Wald
# interval estimate -+ qnorm(0.975) se for glm, as sisma's JSON and HDF5 results)
coef_table <- function(fit, name) {
  cf <- coef(summary(fit))
  ci <- if (inherits(fit, "glm")) confint.default(fit) else confint(fit)
  write_num(data.frame(name = rownames(cf), estimate = cf[, 1], std_error = cf[, 2], statistic = cf[, 3],
                       p_value = cf[, 4], ci_lower = ci[, 1], ci_upper = ci[, 2]), paste0(name, "_coef.csv"))
}

# lm rows: split (1 fitted, 2 test, 3 dev, 0 a missing model variable), response, fitted value
# (predictions on held-out rows), residual y - fitted, and hat, rstudent, Cook's distance of the
# fitted rows
lm_rows <- function(fit, data, split, name) {
  vars <- all.vars(formula(fit))
  ok <- complete.cases(data[, vars])
  code <- ifelse(!ok, 0, ifelse(split == "train", 1, ifelse(split == "test", 2, ifelse(split == "dev", 3, 0))))
  fitted <- ifelse(code > 0, predict(fit, newdata = data), NA)
  y <- ifelse(code > 0, model.response(model.frame(formula(fit), data, na.action = na.pass)), NA)
  d <- data.frame(row = seq_len(nrow(data)), split = code, response = y, fitted = fitted, residual = y - fitted,
                  hat = NA, rstudent = NA, cooks_distance = NA)
  fr <- as.integer(names(residuals(fit)))
  d$hat[fr] <- hatvalues(fit)
  d$rstudent[fr] <- rstudent(fit)
  d$cooks_distance[fr] <- cooks.distance(fit)
  write_num(d, paste0(name, "_rows.csv"))
  coef_table(fit, name)
}

reg <- read.csv(file.path(out, "reg.csv"))
lm_rows(lm(y ~ x1 + g, data = reg), reg, rep("train", nrow(reg)), "lm_factor")
reg_split <- read.csv(file.path(out, "reg_split.csv"))
lm_rows(lm(y ~ x1 + x2, data = reg_split, subset = split == "train"), reg_split, reg_split$split, "lm_split")

# glm rows (the whole table fitted): split, response, linear predictor, probability
cls <- read.csv(file.path(out, "cls.csv"))
fit <- glm(label ~ x1 + x2 + site, family = binomial, data = cls)
write_num(data.frame(row = seq_len(nrow(cls)), split = 1, response = cls$label,
                     linear_predictor = unname(fit$linear.predictors), fitted = unname(fit$fitted.values)),
          "glm_factor_rows.csv")
coef_table(fit, "glm_factor")
