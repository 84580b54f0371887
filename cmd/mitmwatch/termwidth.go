package main

import (
	"os"
	"strconv"
)

// termWidth is the width of the terminal on f, for the report to wrap its
// lines to: the terminal's own answer, else $COLUMNS, else 0 (do not
// wrap: a pipe or a file is read by programs, not by eyes).
func termWidth(f *os.File, getenv func(string) string) int {
	if !isTerminal(f) {
		return 0
	}
	if n := ttyColumns(f); n > 0 {
		return n
	}
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}
