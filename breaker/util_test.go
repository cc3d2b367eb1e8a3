package breaker

import (
	"io"
	"strings"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }
