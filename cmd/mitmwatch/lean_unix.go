//go:build lean && unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// execAgent replaces this process with the agent: it returns only when
// the exec fails.
func execAgent(agent string, args []string) (int, error) {
	err := syscall.Exec(agent, append([]string{agent}, args...), os.Environ())
	return 0, fmt.Errorf("exec %s: %w", agent, err)
}
