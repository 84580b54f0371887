//go:build lean && !unix

package main

import (
	"errors"
	"os"
	"os/exec"
)

// execAgent runs the agent with this process's standard streams and
// returns its exit code: there is no exec here.
func execAgent(agent string, args []string) (int, error) {
	cmd := exec.Command(agent, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
