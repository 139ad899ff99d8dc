//go:build !unix

package update

import "errors"

// Exec is not available here: updates need a Unix box.
func Exec(path string, args, env []string) error {
	return errors.New("update: switching programs needs a Unix system")
}
