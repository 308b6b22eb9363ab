package netns

import (
	"fmt"
	"os/exec"
	"strings"
)

// Run runs a command to completion and returns its combined output. Its
// error names the command line and carries the output.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
