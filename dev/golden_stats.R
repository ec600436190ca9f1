#!/usr/bin/env Rscript
# Golden files for tests/stats: small CSV inputs, R's printed summaries and the numbers behind
# them (full precision). Run from the repository root:
#   LC_ALL=C.UTF-8 Rscript dev/golden_stats.R
# Needs r-base-core, r-cran-car (vif) and r-cran-lmtest (bptest, dwtest). Factor levels sort in
# C collation (as sisma sorts them).
invisible(Sys.setlocale("LC_COLLATE", "C"))
suppressMessages({ library(car); library(lmtest) })
out <- "tests/stats/golden"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
options(width = 80)
set.seed(20261124)

# ---- the regression table: numeric, factor and weight columns, a few missing values ----
n <- 60
d <- data.frame(event = sprintf("ev%02d", rep(1:20, each = 3)),
                x1 = round(rnorm(n, 0, 1.5), 4), x2 = round(runif(n, -2, 2), 4),
                x3 = round(exp(rnorm(n, 1, 0.5)), 4),
                g = sample(c("north", "east", "south"), n, replace = TRUE),
                w = round(runif(n, 0.5, 3), 3))
eff <- c(north = 0, east = 0.8, south = -0.6)
d$y <- round(1 + 2 * d$x1 - 0.5 * d$x2 + 0.3 * log(d$x3) + eff[d$g] + rnorm(n, 0, 0.7 + 0.2 * abs(d$x1)), 4)
d$k <- c(2, 10, 1.5)[(seq_len(n) %% 3) + 1]  # a numeric code for factor(k): sorts numerically
d$y[7] <- NA
d$x2[23] <- NA
d$g[41] <- NA
write.csv(d, file.path(out, "reg.csv"), row.names = FALSE)
reg <- read.csv(file.path(out, "reg.csv"))

# ---- the classification table ----
m <- 200
c2 <- data.frame(x1 = round(rnorm(m), 4), x2 = round(rnorm(m, 1, 2), 4),
                 site = sample(c("A", "B", "C"), m, replace = TRUE))
eta <- -0.4 + 1.1 * c2$x1 - 0.35 * c2$x2 + c(A = 0, B = 0.7, C = -0.5)[c2$site]
c2$label <- rbinom(m, 1, plogis(eta))
write.csv(c2, file.path(out, "cls.csv"), row.names = FALSE)
cls <- read.csv(file.path(out, "cls.csv"))

# a table so small that R prints every residual (rdf <= 5)
write.csv(reg[1:7, ], file.path(out, "small.csv"), row.names = FALSE)
small <- read.csv(file.path(out, "small.csv"))

num <- function(name, v) {
  write.table(data.frame(name = names(v), value = sprintf("%.17g", unname(v))),
              file.path(out, paste0(name, ".num")), sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
}
txt <- function(name, x) writeLines(capture.output(print(x)), file.path(out, paste0(name, ".txt")))

models <- list(
  lm_basic = lm(y ~ x1 + x2, data = reg),
  lm_weighted = lm(y ~ x1 + x2, data = reg, weights = w),
  lm_factor = lm(y ~ x1 + g, data = reg),
  lm_poly = lm(y ~ poly(x1, 3) + x2, data = reg),
  lm_transform = lm(y ~ log(x3) + I(x1^2) + sqrt(x3) + x1:x2, data = reg),
  lm_interact = lm(y ~ x1 * g, data = reg),
  lm_noint = lm(y ~ x1 + x2 - 1, data = reg),
  lm_log10 = lm(log10(x3) ~ x1 + log10(w), data = reg),
  lm_factor_num = lm(y ~ x1 + factor(k), data = reg),
  lm_small = lm(y ~ x1 + x2, data = small)
)
for (nm in names(models)) {
  fit <- models[[nm]]
  s <- summary(fit)
  txt(nm, s)
  txt(paste0(nm, "_confint"), confint(fit))
  cf <- coef(s)
  v <- c(cf[, 1], cf[, 2], cf[, 3], cf[, 4], s$sigma, s$r.squared, s$adj.r.squared,
         if (is.null(s$fstatistic)) c(NA, NA, NA) else s$fstatistic, logLik(fit), AIC(fit), BIC(fit))
  names(v) <- c(paste0("coef:", rownames(cf)), paste0("se:", rownames(cf)), paste0("t:", rownames(cf)),
                paste0("p:", rownames(cf)), "sigma", "r2", "adj_r2", "fstat", "f_numdf", "f_dendf",
                "loglik", "aic", "bic")
  num(nm, v)
}

# ---- diagnostics of lm_basic and lm_factor ----
for (nm in c("lm_basic", "lm_factor")) {
  fit <- models[[nm]]
  rows <- as.integer(names(residuals(fit)))
  write.table(data.frame(row = rows, hat = sprintf("%.17g", hatvalues(fit)),
                         rstudent = sprintf("%.17g", rstudent(fit)), cooks = sprintf("%.17g", cooks.distance(fit))),
              file.path(out, paste0(nm, "_influence.csv")), sep = ",", row.names = FALSE, quote = FALSE)
  bp <- bptest(fit)
  dw <- dwtest(fit)
  vf <- vif(fit)
  vv <- if (is.matrix(vf)) c(vf[, 1], vf[, 3]) else c(vf, sqrt(vf))
  names(vv) <- c(paste0("gvif:", if (is.matrix(vf)) rownames(vf) else names(vf)),
                 paste0("gvif_adj:", if (is.matrix(vf)) rownames(vf) else names(vf)))
  num(paste0(nm, "_diag"), c(bp = unname(bp$statistic), bp_df = unname(bp$parameter), bp_p = bp$p.value,
                             dw = unname(dw$statistic), vv))
}

# ---- logistic regression ----
glms <- list(glm_basic = glm(label ~ x1 + x2, family = binomial, data = cls),
             glm_factor = glm(label ~ x1 + x2 + site, family = binomial, data = cls))
for (nm in names(glms)) {
  fit <- glms[[nm]]
  s <- summary(fit)
  txt(nm, s)
  cf <- coef(s)
  v <- c(cf[, 1], cf[, 2], cf[, 3], cf[, 4], fit$deviance, fit$null.deviance, fit$aic, fit$iter)
  names(v) <- c(paste0("coef:", rownames(cf)), paste0("se:", rownames(cf)), paste0("z:", rownames(cf)),
                paste0("p:", rownames(cf)), "deviance", "null_deviance", "aic", "iter")
  num(nm, v)
}

# ---- distribution functions used for p-values ----
q <- expand.grid(x = c(0.01, 0.5, 1.96, 3.2, 8, 25), df = c(1, 3, 12, 57, 1000, 1e6))
write.table(data.frame(x = q$x, df = q$df, pt = sprintf("%.17g", 2 * pt(-q$x, q$df)),
                       pf = sprintf("%.17g", pf(q$x^2, 3, q$df, lower.tail = FALSE)),
                       pchisq = sprintf("%.17g", pchisq(q$x^2, q$df, lower.tail = FALSE)),
                       qt = sprintf("%.17g", qt(0.975, q$df))),
            file.path(out, "dist.csv"), sep = ",", row.names = FALSE, quote = FALSE)
