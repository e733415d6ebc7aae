// Package evalplot draws an evaluation's two figures with gonum.org/v1/plot, as SVG and PNG: the relative
// scores of groups against one opponent as bars with bootstrap-interval whiskers and a line at parity (the
// paper's Fig. 4), and ROUGE-L by reference-length bucket as grouped bars, one colour per group (Fig. 6).
package evalplot
