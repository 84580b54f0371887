//go:build !unix

package main

import "os"

// ttyColumns cannot ask the terminal here: $COLUMNS decides.
func ttyColumns(*os.File) int { return 0 }
