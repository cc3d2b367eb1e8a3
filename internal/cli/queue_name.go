package cli

import (
	"errors"
	"regexp"
)

// MaxQueueNameLength is the longest queue name River accepts: 64 bytes.
const MaxQueueNameLength = 64

// queueNameRE is River's rule for queue names (river's validateQueueName):
// lower-case letters and digits, in groups joined by one '_', '-' or '|'.
var queueNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[_|\-]?[a-z0-9]+)*$`)

// CheckQueueName applies River's rule for queue names, so a program can
// refuse a bad name before it reads its input or opens a transaction
// (River only refuses it at insert). The error says what is wrong, without
// naming the flag: "empty", or "use lower-case letters and digits
// separated by '_' or '-', at most 64 characters".
func CheckQueueName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > MaxQueueNameLength || !queueNameRE.MatchString(name):
		return errors.New("use lower-case letters and digits separated by '_' or '-', at most 64 characters")
	}
	return nil
}
